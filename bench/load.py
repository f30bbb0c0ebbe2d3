"""Write-path load with wrk: the three reporter workloads and sequential session creation.

Each run is measured from both sides: the client's rate and latency (wrk, a C
load generator that leaves the CPU to the server), and the CPU the server's
process tree (all API workers) and Redis spent, divided by the requests served.
CPU per request is the figure that survives a machine shared with other work;
the rate does not.

Reporter workloads (`PATCH /v2/components/{id}` with `{"id", "actual_state":
{"bss_token"}}`, byte for byte what bos-reporter sends, to random disabled
components, with the reporter's headers: the API answers 204, reporter.md §1):

- `unknown`: every report carries a new token nobody knows (a warning is
  logged, the token is stored, nothing resolves);
- `known`: every report carries a known token other than the stored one (the
  first report after a boot: it resolves to boot artifacts);
- `same`: the token the component already has (the steady state).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

from .common import machine_busy, median, tree_cpu

WORKLOADS = ("unknown", "known", "same")

REPORT_SCRIPT = """
local ids = {}
for line in io.lines("%(ids)s") do ids[#ids + 1] = line end
local tokens = {}
for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
local mode = "%(mode)s"
local headers = {["Content-Type"] = "application/json", ["Accept"] = "application/json", ["Prefer"] = "return=minimal"}
local counter = 0
setup = function(thread) thread:set("seed", math.random(1, 1000000)) end
init = function(args) math.randomseed(seed or 1) end
request = function()
  local id = ids[math.random(#ids)]
  local token = tokens[1]
  if mode == "known" then
    token = tokens[math.random(#tokens)]
  elseif mode == "unknown" then
    counter = counter + 1
    token = string.format("%%08x-0000-4000-8000-%%012d", seed or 1, counter)
  end
  return wrk.format("PATCH", "/v2/components/" .. id, headers,
                    '{"id":"' .. id .. '","actual_state":{"bss_token":"' .. token .. '"}}')
end
"""

# Both scripts end with this (appended %-escaped): wrk's summary as one JSON line.
DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""
REPORT_SCRIPT += DONE.replace("%", "%%")

SESSION_SCRIPT = """
local headers = {["Content-Type"] = "application/json"}
request = function()
  return wrk.format("POST", "/v2/sessions", headers, '%(body)s')
end
""" + DONE.replace("%", "%%")


def available() -> bool:
    return shutil.which("wrk") is not None


def wrk_run(url: str, script: Path, seconds: float, connections: int) -> Dict[str, Any]:
    argv = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s", "--timeout", "10s",
            "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()[:500]} {out.stdout[-500:]}")
    raw = json.loads(line[len("WRK_JSON "):])
    errors = raw["non_2xx"] + raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"]
    return {"rate": raw["requests"] / (raw["duration_us"] / 1e6), "p50_ms": raw["p50_us"] / 1000,
            "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "requests": raw["requests"],
            "errors": errors}


def measured_run(url: str, script: Path, seconds: float, connections: int, pids: Dict[str, int]) -> Dict[str, Any]:
    """One wrk run plus the CPU each named process tree spent during it, per request (ms), and
    `other_cores`: the cores the rest of the machine (wrk included) kept busy meanwhile. CPU per
    request rises with that: sequential session creates measured 0.69 ms of API CPU per request
    at 538/s and 1.29 ms at 212/s in one sitting, same server, on a machine shared with other work."""
    before = {name: tree_cpu(pid) for name, pid in pids.items()}
    busy, started = machine_busy(), time.monotonic()
    run = wrk_run(url, script, seconds, connections)
    measured = 0.0
    for name, pid in pids.items():
        spent = tree_cpu(pid) - before[name]
        measured += spent
        run[f"{name}_cpu_ms_per_request"] = 1000 * spent / max(run["requests"], 1)
    run["other_cores"] = max(0.0, machine_busy() - busy - measured) / (time.monotonic() - started)
    return run


def summarise(runs: List[Dict[str, Any]], **extra: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"runs": len(runs), **extra,
                           "median_rate_per_s": round(median([r["rate"] for r in runs]), 1),
                           "median_p50_ms": round(median([r["p50_ms"] for r in runs]), 2),
                           "median_p99_ms": round(median([r["p99_ms"] for r in runs]), 2),
                           "runs_rate_per_s": [round(r["rate"], 1) for r in runs],
                           "requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs)}
    for key in sorted(k for k in runs[0] if k.endswith("_cpu_ms_per_request") or k == "other_cores"):
        out["median_" + key] = round(median([r[key] for r in runs]), 4)
        out["runs_" + key] = [round(r[key], 4) for r in runs]
    return out


def report_script(work: Path, ids: Sequence[str], tokens: Sequence[str], mode: str) -> Path:
    """The wrk script of one reporter workload (REPORT_SCRIPT), with its ID and token files in `work`."""
    (work / "ids.txt").write_text("\n".join(ids) + "\n")
    (work / f"tokens-{mode}.txt").write_text("\n".join(tokens) + "\n")
    script = work / f"report-{mode}.lua"
    script.write_text(REPORT_SCRIPT % {"ids": work / "ids.txt", "tokens": work / f"tokens-{mode}.txt", "mode": mode})
    return script


def reporter(url: str, work: Path, ids: Sequence[str], tokens: Sequence[str], mode: str, *, seconds: float,
             runs: int, connections: int, pids: Dict[str, int]) -> Dict[str, Any]:
    """One reporter workload: a warm-up, then `runs` measured wrk runs."""
    script = report_script(work, ids, tokens, mode)
    wrk_run(url, script, min(2.0, seconds), connections)
    measured = [measured_run(url, script, seconds, connections, pids) for _ in range(runs)]
    return summarise(measured, workload=mode, generator="wrk (C, 1 thread, keep-alive)", connections=connections,
                     seconds_per_run=seconds)


def sessions(url: str, work: Path, body: Dict[str, Any], *, seconds: float, runs: int,
             pids: Dict[str, int]) -> Dict[str, Any]:
    """`POST /v2/sessions` one after another (one connection), names generated by the server."""
    script = work / "sessions.lua"
    script.write_text(SESSION_SCRIPT % {"body": json.dumps(body, separators=(",", ":"))})
    wrk_run(url, script, min(1.0, seconds), 1)  # warm-up, as the reporter's: a worker's first create reads the template
    measured = [measured_run(url, script, seconds, 1, pids) for _ in range(runs)]
    return summarise(measured, body=body, generator="wrk (C, 1 connection: sequential)", seconds_per_run=seconds)

