#!/usr/bin/env python3
"""Turns schema.sql into a C source defining `const char NAME[]` (the build embeds the
schema so qlabd needs no file at run time). Usage: embed-sql.py NAME IN.sql OUT.c"""
import sys

name, src, dst = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    text = f.read()
lines = []
for line in text.splitlines(keepends=True):
    esc = line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    lines.append('    "' + esc + '"')
with open(dst, "w", encoding="utf-8") as f:
    f.write("/* Generated from %s by embed-sql.py: do not edit. */\n" % src.split("/")[-1])
    f.write("extern const char %s[];\n" % name)
    f.write("const char %s[] =\n%s;\n" % (name, "\n".join(lines) if lines else '""'))
