# lib/tests/yaml.nix: the YAML emitter (lib/yaml.nix) and Prometheus durations
# (lib/duration.nix) that the monitoring renderers write with.
let
  inherit (builtins) deepSeq tryEval;
  yaml = import ../yaml.nix;
  duration = import ../duration.nix;
  toYAML = yaml.toYAML {};
  evaluates = value: (tryEval (deepSeq value true)).success;
in {
  # ------------------------------------------------------------ yaml: layout

  testMappingSortedByDefault = {
    expr = toYAML {
      b = 1;
      a = "x";
    };
    expected = "a: x\nb: 1\n";
  };
  testKeyOrderFirst = {
    expr = yaml.toYAML {keyOrder = ["name" "b"];} {
      a = 1;
      b = 2;
      name = "x";
    };
    expected = "name: x\nb: 2\na: 1\n";
  };
  testNestedMappingsAndSequences = {
    expr = toYAML {
      groups = [
        {
          name = "g";
          rules = [{alert = "A";} {alert = "B";}];
        }
      ];
    };
    expected = ''
      groups:
      - name: g
        rules:
        - alert: A
        - alert: B
    '';
  };
  testSequenceOfSequencesAndEmpties = {
    expr = toYAML {
      a = [[1 2] [] {}];
      b = {};
      c = [];
    };
    expected = ''
      a:
      - - 1
        - 2
      - []
      - {}
      b: {}
      c: []
    '';
  };
  testScalars = {
    expr = toYAML [true false null 3 0.5 (-2)];
    expected = "- true\n- false\n- null\n- 3\n- 0.5\n- -2\n";
  };

  # ------------------------------------------------------------ yaml: strings

  testPlainStrings = {
    expr = map yaml.isPlain ["rules.yml" "/metrics" "15s" "500ms" "A web host answers." "job_name"];
    expected = [true true true true true true];
  };
  # YAML 1.1 (Go's yaml.v2) would read these as booleans, null, numbers or sexagesimals.
  testAmbiguousStringsAreQuoted = {
    expr = map yaml.isPlain ["yes" "No" "ON" "off" "y" "null" "true" "1e3" "0x10" "12:30" "10.42.0.1:9100" "" " a" "a " "a: b" "a #b" "-a" "*a" "{a}"];
    expected = [false false false false false false false false false false false false false false false false false false false];
  };
  testSingleQuotes = {
    expr = toYAML {
      s = "it's {{ $labels.host }}";
      e = ''up{job="node"} == 0'';
    };
    expected = ''
      e: 'up{job="node"} == 0'
      s: 'it'''s {{ $labels.host }}'
    '';
  };
  testMultiLineIsALiteralBlock = {
    expr = toYAML {
      a = "x\n  y";
      b = "x\ny\n";
    };
    expected = ''
      a: |-
        x
          y
      b: |
        x
        y
    '';
  };
  testUnblockableTextIsDoubleQuoted = {
    expr = toYAML [" lead\nx" "x\n\n" "tab\there"];
    expected = ''
      - " lead\nx"
      - "x\n\n"
      - "tab\there"
    '';
  };
  testFunctionThrows = {
    expr = evaluates (toYAML {f = x: x;});
    expected = false;
  };

  # ------------------------------------------------------------ durations

  testParse = {
    expr = map duration.parse ["500ms" "15s" "2m" "1h" "1d" "1w" "0s"];
    expected = [500 15000 120000 3600000 86400000 604800000 0];
  };
  testFormatLargestExactUnit = {
    expr = map duration.format [500 8000 60000 90000 7200000 0];
    expected = ["500ms" "8s" "1m" "90s" "2h" "0s"];
  };
  testInvalid = {
    expr = map duration.isValid ["1m30s" "15" "s" "-1s" "1.5s" 15 null "01s"];
    expected = [false false false false false false false false];
  };
  testParseInvalidThrows = {
    expr = evaluates (duration.parse "soon");
    expected = false;
  };
}
