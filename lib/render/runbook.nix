# lib/render/runbook.nix: docs/runbook.md as one HTML page, for Prometheus to serve among
# its console templates (prometheus/consoles/runbook.html), so that every alert's
# runbook_url opens on the monitoring host itself: no wiki or repository web view needed.
#
# A small Markdown subset, line by line, which is all the runbook uses: `#`/`##` headings
# (a `##` heading gets the id its alert's anchor names: the heading in lower case),
# paragraphs, `- ` list items (continued by indented lines), ``` fences, `---` rules,
# `code` and **bold**. Prometheus runs console files through Go's template engine, so
# braces are written as character references and no `{{` reaches it.
#
# Type: string (Markdown) -> string (HTML)
let
  inherit (builtins) concatStringsSep elemAt filter foldl' genList head isString length match replaceStrings split;
  util = import ../util.nix;

  lines = text: filter isString (split "\n" text);
  escape = replaceStrings ["&" "<" ">" "\"" "{" "}"] ["&amp;" "&lt;" "&gt;" "&quot;" "&#123;" "&#125;"];

  # Alternating plain and marked parts of `text` split at `mark`: odd parts are marked.
  alternate = mark: open: close: plain: text: let
    parts = filter isString (split mark text);
  in
    concatStringsSep "" (genList (i: let
      part = elemAt parts i;
    in
      if i / 2 * 2 == i
      then plain part
      else open + part + close) (length parts));
  bold = alternate "\\*\\*" "<strong>" "</strong>" (s: s);
  inline = alternate "`" "<code>" "</code>" bold;
  text = line: inline (escape line);

  heading = level: title: let
    id = util.toLower title;
  in
    if level == 2
    then ''<h2 id="${escape id}">${text title}</h2>''
    else "<h${toString level}>${text title}</h${toString level}>";

  # The state between lines: what block is open, and the HTML so far (reversed chunks).
  close = state:
    state
    // {
      out =
        state.out
        ++ (
          if state.block == "p"
          then ["</p>"]
          else if state.block == "ul"
          then ["</li></ul>"]
          else []
        );
      block = null;
    };
  step = state: line: let
    m = regex: match regex line;
  in
    if state.block == "pre"
    then
      if m "```.*" != null
      then
        state
        // {
          out = state.out ++ ["</pre>"];
          block = null;
        }
      else state // {out = state.out ++ [(escape line + "\n")];}
    else if m "```.*" != null
    then
      (close state)
      // {
        out = (close state).out ++ ["<pre>"];
        block = "pre";
      }
    else if m "## (.*)" != null
    then (close state) // {out = (close state).out ++ [(heading 2 (head (m "## (.*)")))];}
    else if m "# (.*)" != null
    then (close state) // {out = (close state).out ++ [(heading 1 (head (m "# (.*)")))];}
    else if m "---+" != null
    then (close state) // {out = (close state).out ++ ["<hr>"];}
    else if m "- (.*)" != null
    then
      if state.block == "ul"
      then state // {out = state.out ++ ["</li><li>" (text (head (m "- (.*)")))];}
      else
        (close state)
        // {
          out = (close state).out ++ ["<ul><li>" (text (head (m "- (.*)")))];
          block = "ul";
        }
    else if m " *" != null
    then close state
    else if state.block == null
    then
      state
      // {
        out = state.out ++ ["<p>" (text line)];
        block = "p";
      }
    else state // {out = state.out ++ ["\n" (text (head (match " *(.*)" line)))];};

  body = markdown:
    concatStringsSep ""
    (close (foldl' step {
      out = [];
      block = null;
    } (lines markdown)))
    .out;
in
  markdown:
    util.concatLines [
      "<!DOCTYPE html>"
      "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rampart runbook</title>"
      "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.45}code,pre{background:#f3f3f3}h2{border-top:1px solid #ccc;padding-top:1em}</style>"
      "</head><body>"
      (body markdown)
      "</body></html>"
    ]
