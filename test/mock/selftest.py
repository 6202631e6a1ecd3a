#!/usr/bin/env python3
"""Self-test of synchub's mock servers.

Starts httpmock.py and crm.py (each provider) on free ports, exercises every
endpoint, control call and fault, measures rough throughput, and prints
`N passed, N failed`. Exit status is non-zero on any failure.
  selftest.py [-v] [only...]   (only: http hubspot salesforce pipedrive)
"""

import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import selftest_crm  # noqa: E402
import selftest_http  # noqa: E402


class T:
    def __init__(self, verbose):
        self.passed = 0
        self.failed = 0
        self.verbose = verbose
        self.section = ""
        self.notes = []

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            if self.verbose:
                print("ok   %s: %s" % (self.section, name))
        else:
            self.failed += 1
            print("FAIL %s: %s %s" % (self.section, name, str(detail)[:300]))
        return cond

    def note(self, text):
        self.notes.append(text)
        print("     %s" % text)


def main():
    argv = sys.argv[1:]
    verbose = "-v" in argv
    only = [a for a in argv if not a.startswith("-")]
    t = T(verbose)
    start = time.time()
    suites = [("http", selftest_http.run)] + [
        (p, lambda t, p=p: selftest_crm.run(t, p)) for p in ("hubspot", "salesforce", "pipedrive")]
    for name, fn in suites:
        if only and name not in only:
            continue
        t.section = name
        try:
            fn(t)
        except Exception:
            t.check("suite ran to the end", False, traceback.format_exc())
    print("%d passed, %d failed (%.1f s)" % (t.passed, t.failed, time.time() - start))
    sys.exit(1 if t.failed else 0)


if __name__ == "__main__":
    main()
