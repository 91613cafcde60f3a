"""Run hostile-input cases in a child process with a memory limit.

A blow-up (a pickle that allocates gigabytes, a decompression bomb) then fails the
test instead of the machine: the child sets `RLIMIT_AS` to what its imports took
plus `headroom` bytes, so an allocation past that raises MemoryError (or kills the
child), and the parent sees the outcome of every case as JSON.

The child runs `prelude` (imports) before the limit, then for every case
`(name, expression)` evaluates `expression` and records either its value (which
must be JSON) or the error's type name, message and MRO.
"""

import json
import os
import subprocess
import sys
import textwrap

_CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, traceback
    cases = json.loads(sys.argv[1])
    headroom = int(sys.argv[2])
    drop_to_nobody = sys.argv[3] == "1"
    exec(sys.stdin.read())  # the prelude: imports and helper functions
    with open("/proc/self/status") as status:
        vm = next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + headroom, vm + headroom))
    if drop_to_nobody and os.geteuid() == 0:  # so that file permissions apply
        import grp, pwd  # noqa: F401 - the stdlib may be unreadable to nobody
        os.setgid(65534)
        os.setuid(65534)
    for name, expression in cases:
        try:
            value = eval(expression)
            record = {"name": name, "ok": True, "value": value}
        except BaseException as error:  # MemoryError too: it is the finding
            record = {
                "name": name,
                "ok": False,
                "type": type(error).__name__,
                "bases": [c.__name__ for c in type(error).__mro__],
                "message": str(error),
            }
        print(json.dumps(record, default=repr), flush=True)
    """
)


def run_cases(
    prelude: str,
    cases: list[tuple[str, str]],
    *,
    headroom: int = 1 << 30,
    drop_to_nobody: bool = False,
    timeout: float = 120,
) -> tuple[dict[str, dict], str]:
    """({case name: outcome}, the child's stderr); fails if the child died."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    process = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            json.dumps(cases),
            str(headroom),
            "1" if drop_to_nobody else "0",
        ],
        input=textwrap.dedent(prelude),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    outcomes = {}
    for line in process.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            outcomes[record["name"]] = record
    missing = [name for name, _ in cases if name not in outcomes]
    assert process.returncode == 0 and not missing, (
        f"child exited {process.returncode} (negative: killed by a signal) before "
        f"the cases {missing}; stderr:\n{process.stderr[-3000:]}"
    )
    return outcomes, process.stderr
