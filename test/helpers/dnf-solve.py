"""What the host's dnf would install for each request, from repository metadata alone.

Usage: dnf-solve.py INSTALLROOT REPODIR... < requests.json
requests.json is a list of requests, each a list of package names; the answer, on stdout, is a list
of {"packages": [nevra, ...]} or {"error": "..."}, one per request, in order. The same as
`dnf --installroot=INSTALLROOT --repofrompath=... --assumeno install NAME...` for each, with the
metadata loaded once. Weak dependencies are off and only x86_64 and noarch are considered, as in
vmstub's bootstrap.
"""
import json
import sys

import dnf
import dnf.exceptions


def nevra(p):
    epoch = f"{p.epoch}:" if p.epoch else ""
    return f"{p.name}-{epoch}{p.version}-{p.release}.{p.arch}"


def main():
    root, *repos = sys.argv[1:]
    base = dnf.Base()
    conf = base.conf
    conf.installroot = root
    conf.cachedir = f"{root}/cache"
    conf.install_weak_deps = False
    conf.best = True
    conf.gpgcheck = False
    conf.reposdir = []
    conf.substitutions["releasever"] = "9"
    for i, path in enumerate(repos):
        base.repos.add_new_repo(f"r{i}", conf, baseurl=[f"file://{path}"], gpgcheck=False)
    base.fill_sack(load_system_repo=False)
    base.sack.add_excludes(base.sack.query().filter(arch__neq=["x86_64", "noarch"]))
    answers = []
    for names in json.load(sys.stdin):
        base.reset(goal=True)
        try:
            for name in names:
                base.install(name)
            base.resolve()
            answers.append({"packages": sorted(nevra(p) for p in base.transaction.install_set)})
        except dnf.exceptions.Error as e:
            answers.append({"error": str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__})
    json.dump(answers, sys.stdout)


main()
