//! The same topologies go to the Rust model and to `lib/topology.nix`: both must reject each
//! broken one with exactly the message in its `.expected` file, accept the good ones, and
//! build every fixture (the base topology plus a JSON Patch) into the same document.

mod topology_fixtures;

use std::collections::BTreeMap;
use std::path::Path;

use rampart_topology::{problems, Topology};
use serde_json::Value;

use topology_fixtures::{bad, good, nix_eval, repo, shipped};

/// What the Nix side builds and finds: `{ good|bad = { <name> = { document; problems; }; }; }`.
fn from_nix() -> Value {
    nix_eval(
        "let\n  check = topo: { document = topo; problems = topology.validate topo; };\nin {\n  \
         good = builtins.mapAttrs (_: check) fixtures.good;\n  \
         bad = builtins.mapAttrs (_: case: check case.topology) fixtures.bad;\n  \
         shipped = check (builtins.fromJSON (builtins.readFile (repo + \"/hosts/topology.json\")));\n}",
    )
}

/// The Nix side's problems for each fixture of a kind.
fn nix_problems(nix: &Value, kind: &str) -> BTreeMap<String, Vec<String>> {
    let fixtures = nix[kind].as_object().expect("an attrset of fixtures");
    fixtures
        .iter()
        .map(|(name, found)| {
            let problems = serde_json::from_value(found["problems"].clone()).unwrap();
            (name.clone(), problems)
        })
        .collect()
}

#[test]
fn at_least_ten_distinct_defects_are_covered() {
    assert!(bad().len() >= 10);
}

#[test]
fn rust_rejects_each_bad_topology_with_its_message() {
    let mut wrong = Vec::new();
    for (name, (document, expected)) in bad() {
        let got = problems(&document);
        if got != [expected.clone()] {
            wrong.push(format!(
                "{name}:\n  expected [{expected}]\n  got      {got:?}"
            ));
        }
        let err =
            Topology::from_json_str(&document.to_string(), Path::new(&name)).expect_err(&name);
        assert_eq!(
            err.problems(),
            got.as_slice(),
            "{name}: from_json_str and problems() disagree"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn rust_accepts_the_good_topologies() {
    for (name, document) in good() {
        if let Err(e) = Topology::from_json_str(&document.to_string(), Path::new(&name)) {
            panic!("{e}");
        }
    }
    let path = repo().join("hosts/topology.json");
    if let Err(e) = Topology::load(&path) {
        panic!("{e}");
    }
}

#[test]
fn nix_rejects_each_bad_topology_with_the_same_message() {
    let from_nix = nix_problems(&from_nix(), "bad");
    let mut wrong = Vec::new();
    for (name, (_, expected)) in bad() {
        let got = &from_nix[&name];
        if *got != [expected.clone()] {
            wrong.push(format!(
                "{name}:\n  expected [{expected}]\n  nix gave {got:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nix_accepts_the_good_topologies() {
    let nix = from_nix();
    for (name, problems) in nix_problems(&nix, "good") {
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
    let shipped = &nix["shipped"]["problems"];
    assert_eq!(*shipped, serde_json::json!([]), "hosts/topology.json");
}

/// A fixture means one document: the JSON Patch implementations of both sides agree on
/// every file, and both find the same fixtures.
#[test]
fn both_sides_build_the_same_fixtures() {
    let nix = from_nix();
    let rust_good = good();
    let rust_bad = bad();
    let names =
        |kind: &str| -> Vec<String> { nix[kind].as_object().unwrap().keys().cloned().collect() };
    assert_eq!(names("good"), rust_good.keys().cloned().collect::<Vec<_>>());
    assert_eq!(names("bad"), rust_bad.keys().cloned().collect::<Vec<_>>());
    for (name, document) in rust_good {
        assert_eq!(
            nix["good"][&name]["document"], document,
            "good fixture {name}"
        );
    }
    for (name, (document, _)) in rust_bad {
        assert_eq!(
            nix["bad"][&name]["document"], document,
            "bad fixture {name}"
        );
    }
    assert_eq!(nix["shipped"]["document"], shipped());
}
