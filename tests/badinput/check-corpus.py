#!/usr/bin/python3
"""check-corpus.py QLAB CORPUS_DIR EXPECTED_TSV [--observe]

Runs the real CLI on every row of expected.tsv (see make-corpus.py for the format) from
inside the corpus folder, and checks that it fails, that stderr has the expected line
exactly, and that nothing was written but the database: no experiment for 'run' rows, at
most a 'failed' one for 'runfail' rows, no new or changed file in the corpus folder, only
the database's own files in its folder. xfail rows are reported, not counted as failures.
--observe prints what the CLI says for every row instead of checking.
"""
import os
import sqlite3
import subprocess
import sys
import tempfile

QUANT_ARGS = ['--bits', '8', '--scheme', 'symmetric', '--granularity', 'tensor',
              '--calibration', 'minmax']


def snapshot(folder):
    return {f: os.stat(os.path.join(folder, f)).st_mtime_ns for f in os.listdir(folder)}


def stderr_lines(text):
    return [l.replace('\r\033[K', '').rstrip() for l in text.splitlines()]


def main():
    qlab, corpus, tsv = (os.path.abspath(a) for a in sys.argv[1:4])
    observe = '--observe' in sys.argv[4:]
    rows = []
    with open(tsv) as f:
        for line in f:
            if line.startswith('#') or not line.strip():
                continue
            parts = line.rstrip('\n').split('\t')
            rows.append((parts[0], parts[1], parts[2], len(parts) > 3 and parts[3] == 'xfail'))
    before = snapshot(corpus)
    env = dict(os.environ, QLAB_THREADS='1')
    env.pop('QLAB_SOCKET', None)
    failed, xfailed, passed, xpassed = [], [], 0, []
    for name, command, expected, xfail in rows:
        with tempfile.TemporaryDirectory(prefix='qlab-badinput-') as tmp:
            db = os.path.join(tmp, 'qlab.db')
            if command == 'quant':
                argv = [qlab, 'quant', name] + QUANT_ARGS
            else:
                argv = [qlab, 'run', name, '--db', db, '--quiet', '--workers', '1']
            try:
                p = subprocess.run(argv, cwd=corpus, env=env, capture_output=True, text=True,
                                   errors='replace', timeout=120)
                rc, err = p.returncode, p.stderr
            except subprocess.TimeoutExpired:
                rc, err = 'timeout', ''
            # The corpus folder reads @DIR@, the rest of the source tree @ROOT@ (the
            # shipped models), so the expected lines hold on any checkout.
            root = os.path.dirname(os.path.dirname(os.path.dirname(corpus)))
            lines = stderr_lines(err.replace(corpus, '@DIR@').replace(root, '@ROOT@'))
            if observe:
                print('%s\t%s\trc=%s' % (name, command, rc))
                for l in lines:
                    print('    ' + l)
                continue
            problems = []
            if rc == 0 or rc == 'timeout' or (isinstance(rc, int) and rc < 0):
                problems.append('exit status %s (want a clean non-zero exit)' % rc)
            if expected not in lines:
                problems.append('stderr lacks the expected line:\n      want: %s\n      got:  %s'
                                % (expected, '\n            '.join(lines) or '(nothing)'))
            if command != 'quant' and os.path.exists(db):
                con = sqlite3.connect(db)
                try:
                    exps = con.execute('SELECT status FROM experiments').fetchall()
                except sqlite3.Error:
                    exps = []
                ok = con.execute('PRAGMA integrity_check').fetchone()[0]
                con.close()
                if ok != 'ok':
                    problems.append('integrity_check: %s' % ok)
                if command == 'run' and exps:
                    problems.append('%d experiment(s) stored for a refused file' % len(exps))
                if command == 'runfail' and any(s[0] != 'failed' for s in exps):
                    problems.append('experiment stored with status %s, want failed'
                                    % ', '.join(s[0] for s in exps))
            # the database's own files, and its writer lock (qlabd and `qlab run` hold
            # qlab.db.lock while they write; it has no content of theirs)
            extra = sorted(set(os.listdir(tmp)) - {'qlab.db', 'qlab.db-wal', 'qlab.db-shm',
                                                   'qlab.db-journal', 'qlab.db.lock'})
            if extra:
                problems.append('files written beside the database: %s' % ', '.join(extra))
        if not problems:
            if xfail:
                xpassed.append(name)
            passed += 1
        elif xfail:
            xfailed.append((name, problems))
        else:
            failed.append((name, problems))
    if observe:
        return 0
    after = snapshot(corpus)
    if after != before:
        changed = sorted(f for f in set(after) | set(before) if after.get(f) != before.get(f))
        failed.append(('(corpus folder)', ['files created or changed: ' + ', '.join(changed)]))
    for name, problems in xfailed:
        print('XFAIL %s (known poor message, see issue 8):\n    %s' % (name, '\n    '.join(problems)))
    for name in xpassed:
        print('XPASS %s: the message is now right; drop "xfail" in make-corpus.py' % name)
    for name, problems in failed:
        print('FAIL %s:\n    %s' % (name, '\n    '.join(problems)))
    print('%d rows: %d pass, %d xfail, %d fail' % (len(rows), passed, len(xfailed), len(failed)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
