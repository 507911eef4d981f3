"""Reads a JSON list of Dockerfile texts on stdin and prints, for each, how BuildKit's
own parser (PyPI `dockerfile`, which wraps its Go code) reads it: its instructions, or
its error. Used by `buildkit_parser.rs`."""

import json
import sys

import dockerfile

results = []
for text in json.load(sys.stdin):
    try:
        commands = dockerfile.parse_string(text)
    except dockerfile.GoParseError as error:
        results.append({"error": str(error)})
        continue
    results.append({
        "instructions": [
            {
                "keyword": (command.cmd or "").upper(),
                "sub_keyword": command.sub_cmd.upper() if command.sub_cmd else None,
                "json": command.json,
                "flags": list(command.flags),
                "values": list(command.value),
                "heredocs": [heredoc.content for heredoc in command.heredocs],
                "start_line": command.start_line,
                "end_line": command.end_line,
            }
            for command in commands
        ]
    })
json.dump(results, sys.stdout)
