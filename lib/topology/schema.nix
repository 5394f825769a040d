# lib/topology/schema.nix: what a topology looks like. The fields and their JSON types (the
# structural pass of docs/topology.md), the role names, and the forms of a policy selector.
# The Rust counterparts are tools/crates/topology/src/schema.rs and the `Role` and
# `Selector` types of its lib.rs.
let
  inherit (builtins) attrNames concatLists concatMap concatStringsSep elem filter lessThan match sort stringLength substring typeOf;
  inherit (import ../util.nix) hasPrefix imap0 optional;

  join = concatStringsSep ", ";

  # JSON type names used in messages; a `number` field accepts an `integer` too.
  jsonTypeNames = {
    int = "integer";
    float = "number";
    bool = "boolean";
    string = "string";
    list = "array";
    set = "object";
    "null" = "null";
  };
  jsonType = v: jsonTypeNames.${typeOf v} or (typeOf v);
  typeMatches = expected: v: let
    got = jsonType v;
  in
    got == expected || (expected == "number" && got == "integer");

  string = {type = "string";};
  integer = {type = "integer";};
  number = {type = "number";};
  arrayOf = items: {
    type = "array";
    inherit items;
  };
  object = fields: {
    type = "object";
    inherit fields;
  };
  # An object whose keys are names (services): values share one schema, keys visited sorted.
  mapOf = values: {
    type = "object";
    inherit values;
  };
  required = name: schema: {
    inherit name schema;
    optional = false;
  };
  optionalField = name: schema: {
    inherit name schema;
    optional = true;
  };

  # The fields in the order docs/topology.md checks them.
  topologySchema = object [
    (required "version" integer)
    (required "name" string)
    (required "domain" string)
    (required "network" (object [(required "cidr" string)]))
    (required "adminNetworks" (arrayOf string))
    (required "publicNames" (arrayOf string))
    (required "hosts" (arrayOf (object [
      (required "name" string)
      (required "address" string)
      (required "roles" (arrayOf string))
    ])))
    (required "services" (mapOf (object [
      (required "port" integer)
      (optionalField "description" string)
    ])))
    (required "policy" (arrayOf (object [
      (required "service" string)
      (required "to" (arrayOf string))
      (required "from" (arrayOf string))
    ])))
    (required "monitoring" (object [
      (required "qpsThreshold" number)
      (required "alertReceiver" (object [
        (required "name" string)
        (required "webhookUrl" string)
      ]))
    ]))
    (optionalField "lab" (object [
      (required "outside" string)
      (optionalField "admin" string)
    ]))
  ];

  # Paths: the root is "" internally and "topology" in messages; its fields have bare names.
  showPath = path:
    if path == ""
    then "topology"
    else path;
  childPath = path: key:
    if path == ""
    then key
    else "${path}.${key}";

  check = path: schema: value:
    if !(typeMatches schema.type value)
    then ["${showPath path}: expected ${schema.type}, got ${jsonType value}"]
    else if schema ? items
    then concatLists (imap0 (i: check "${path}[${toString i}]" schema.items) value)
    else if schema ? fields
    then checkFields path schema.fields value
    else if schema ? values
    then concatMap (key: check (childPath path key) schema.values value.${key}) (attrNames value)
    else [];

  # Missing and mistyped fields (recursively) in schema order, then unknown fields sorted.
  checkFields = path: fields: value: let
    known = map (f: f.name) fields;
    expected = join (sort lessThan known);
  in
    concatMap (
      f:
        if value ? ${f.name}
        then check (childPath path f.name) f.schema value.${f.name}
        else optional (!f.optional) "${showPath path}: missing field \"${f.name}\""
    )
    fields
    ++ map (key: "${showPath path}: unknown field \"${key}\" (expected one of: ${expected})")
    (filter (key: !elem key known) (attrNames value));

  # Policy selectors. A CIDR starts with a digit; `internet`, `admin` and CIDRs name no host,
  # so they only make sense in `from`.
  isCidrSelector = sel: match "[0-9]" (substring 0 1 sel) != null;
in {
  # structuralProblems :: any -> [string]; the unknown, missing and mistyped fields of any
  # JSON value, in the order of docs/topology.md. Never throws.
  structuralProblems = check "" topologySchema;

  # The valid values of `hosts[].roles`, sorted.
  roles = ["databasePrimary" "databaseReplica" "loadBalancer" "monitoring" "web"];

  inherit isCidrSelector;
  isSourceOnly = sel: sel == "internet" || sel == "admin" || isCidrSelector sel;
  # roleOf :: string -> string | null; the role of a `role:<role>` selector.
  roleOf = sel:
    if hasPrefix "role:" sel
    then substring 5 (stringLength sel) sel
    else null;
}
