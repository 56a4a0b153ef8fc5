"""A throwaway SLURM cluster of N nodes on loopback for tests marked `slurm` (Debian's slurm-wlm
and munge, run as root): munged, slurmctld and one slurmd per node as child processes in the
foreground (so they are stopped by their own PIDs), their config, state and logs in one folder,
free ports, and an `sacct` stand-in (there is no slurmdbd) that submitit can poll.

The nodes (node1, node2, ...) are slurmd daemons on 127.0.0.1, each on its own port with its own
spool, pid and log files (``%n`` in the paths). Each runs in a private mount namespace whose
/etc/hosts (bind-mounted from this folder) names every node, so that jobs resolve node names
as on a real cluster (Lightning's DDP ranks meet at the first node of SLURM_NODELIST) while the
machine's own /etc/hosts stays untouched. Every node offers the whole machine (its CPUs and
memory), so two nodes' jobs share the same cores.

    with SlurmCluster(tmp_dir, nodes=2) as cluster:
        subprocess.run([...], env=cluster.env)   # SLURM_CONF, and the stand-in first on PATH
        cluster.wait_idle()
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")

# What submitit runs: `sacct -o JobID,State,NodeList --parsable2 -j ID ...`. Jobs slurmctld still
# knows (MinJobAge) come from `scontrol show job`, older ones from the jobcomp/filetxt file.
SACCT = '''#!{python}
"""sacct stand-in for a cluster without slurmdbd (written by tests/helpers/slurm_cluster.py)."""
import subprocess, sys

ids = [sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "-j"]
ids = {{x for a in ids for x in a.split(",")}}

def records(text):
    for line in text.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        if "JobId" in fields:
            yield fields

def row(job):
    array, task = job.get("ArrayJobId"), job.get("ArrayTaskId")
    if array and task:
        job_id = array + "_" + (task if task.isdigit() else "[" + task.split("%")[0] + "]")
    else:
        array, job_id = job["JobId"], job["JobId"]
    if job["JobId"] in ids or array in ids:
        nodes = job.get("NodeList", "")
        return job_id + "|" + job["JobState"] + "|" + ("None assigned" if nodes in ("", "(null)") else nodes)

rows = {{}}
try:
    with open({jobcomp!r}) as f:
        for job in records(f.read()):
            rows[job["JobId"]] = row(job)
except FileNotFoundError:
    pass
shown = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True)
for job in records(shown.stdout):
    rows[job["JobId"]] = row(job)
print("JobID|State|NodeList")
print("\\n".join(sorted({{r for r in rows.values() if r}})))
'''


def installed() -> str | None:
    """Why this machine cannot run the cluster, or None when it can."""
    missing = [d for d in (*DAEMONS, "mungekey") if not shutil.which(d, path=os.environ["PATH"] + ":/usr/sbin")]
    if missing:
        return f"SLURM/munge not installed ({', '.join(missing)} missing): apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the throwaway SLURM cluster runs its daemons as root"
    probe = subprocess.run([*PRIVATE_HOSTS, "/etc/hosts", "true"], capture_output=True, text=True)
    if probe.returncode:
        return (f"the SLURM test nodes need a private mount namespace (unshare --mount) for their own "
                f"/etc/hosts: {probe.stderr.strip()[-200:]}")
    return None


# Runs a command in a new mount namespace where the file "$0" is bind-mounted on /etc/hosts (the
# PID stays the command's: unshare and sh exec it).
PRIVATE_HOSTS = ["unshare", "--mount", "--propagation", "private",
                 "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"']


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class SlurmCluster:
    def __init__(self, root: Path, nodes: int = 2):
        self.root = Path(root)
        self.nodes = [f"node{i}" for i in range(1, nodes + 1)]
        self.node = self.nodes[0]  # where a one-node job goes when all are idle
        self.hosts = self.root / "hosts"
        self.conf = self.root / "slurm.conf"
        self.jobcomp = self.root / "jobcomp.txt"
        self.bin = self.root / "bin"
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []
        # munged wants every folder above its socket searchable by all, which pytest's are not
        self.socket_dir = Path(tempfile.mkdtemp(prefix="munge-"))
        os.chmod(self.socket_dir, 0o755)
        path = f"{self.bin}:{os.environ['PATH']}:/usr/sbin"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf), "PATH": path}

    def _sbin(self, name: str) -> str:
        return shutil.which(name, path=self.env["PATH"])

    def _write_files(self) -> None:
        r = self.root
        for d in ("munge", "state", "spool", "bin"):
            (r / d).mkdir(parents=True, exist_ok=True)
        subprocess.run([self._sbin("mungekey"), "--create", "--force", "--keyfile", str(r / "munge/key")],
                       check=True, capture_output=True)
        machine = subprocess.run([self._sbin("slurmd"), "-C"], capture_output=True, text=True, check=True)
        fields = dict(f.split("=", 1) for f in machine.stdout.splitlines()[0].split())
        del fields["NodeName"]
        fields["RealMemory"] = str(int(int(fields["RealMemory"]) * 0.9))
        ctld_port, *node_ports = _free_ports(1 + len(self.nodes))
        self.hosts.write_text(Path("/etc/hosts").read_text() + f"\n127.0.0.1 {' '.join(self.nodes)}\n")
        self.conf.write_text("\n".join([
            "ClusterName=pytest", "SlurmctldHost=localhost", f"SlurmctldPort={ctld_port}",
            "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
            # cred_expire is also how long a requeued job waits before it may start again (120 s by default)
            f"AuthInfo=socket={self.socket_dir}/socket,cred_expire=10",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory", "ReturnToService=2",
            # %n: each node's own spool, pid and log (all nodes are on this machine)
            f"StateSaveLocation={r}/state", f"SlurmdSpoolDir={r}/spool/%n",
            f"SlurmctldPidFile={r}/slurmctld.pid", f"SlurmdPidFile={r}/slurmd.%n.pid",
            f"SlurmctldLogFile={r}/slurmctld.log", f"SlurmdLogFile={r}/slurmd.%n.log",
            "JobCompType=jobcomp/filetxt", f"JobCompLoc={self.jobcomp}",
            "AccountingStorageType=accounting_storage/none", "JobAcctGatherType=jobacct_gather/none",
            "SchedulerType=sched/backfill", "DefMemPerCPU=1000", "MinJobAge=300", "KillWait=5",
            # Lightning's DDP port is 15000 + the job id's last 4 digits: clusters of concurrent test
            # sessions on this machine should not number their jobs alike.
            f"FirstJobId={random.randrange(10_000, 60_000)}",
            *(f"NodeName={node} NodeAddr=127.0.0.1 Port={port} " + " ".join(f"{k}={v}" for k, v in fields.items())
              for node, port in zip(self.nodes, node_ports)),
            "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP", "",
        ]))
        sacct = self.bin / "sacct"
        sacct.write_text(SACCT.format(python=sys.executable, jobcomp=str(self.jobcomp)))
        sacct.chmod(sacct.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def _spawn(self, name: str, *args: str, key: str | None = None, hosts: Path | None = None) -> None:
        key = key or name
        log = open(self.root / f"{key}.out", "wb")  # what a daemon prints before its log file opens
        self._logs.append(log)
        command = [self._sbin(name), *args]
        if hosts is not None:
            command = [*PRIVATE_HOSTS, str(hosts), *command]
        self.procs[key] = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, start_new_session=True)

    def slurm(self, *args: str, check: bool = True) -> str:
        """Run a SLURM command against this cluster; its stdout."""
        proc = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=30)
        if check and proc.returncode:
            raise RuntimeError(f"{' '.join(args)}: exit {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout

    def _wait(self, what: str, ready, timeout: float) -> None:
        deadline = time.time() + timeout
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.time() > deadline:
                logs = "\n".join(f"--- {f.name}\n{f.read_text()[-2000:]}" for f in sorted(self.root.glob("*.out"))
                                 + sorted(self.root.glob("*.log")))
                raise RuntimeError(f"SLURM cluster: {what} ({', '.join(dead) or 'timed out'})\n{logs}")
            time.sleep(0.1)

    def start(self, timeout: float = 30) -> "SlurmCluster":
        self._write_files()
        r = self.root / "munge"
        self._spawn("munged", "--foreground", f"--socket={self.socket_dir}/socket", f"--key-file={r}/key",
                    f"--pid-file={r}/munged.pid", f"--log-file={r}/munged.log", f"--seed-file={r}/seed")
        self._wait("munged did not start", (self.socket_dir / "socket").exists, timeout)
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))  # -i: no state from an earlier run
        self._wait("slurmctld did not answer", lambda: "UP" in self.slurm("scontrol", "ping", check=False), timeout)
        for node in self.nodes:
            self._spawn("slurmd", "-D", "-N", node, "-f", str(self.conf), key=f"slurmd.{node}", hosts=self.hosts)
        self._wait("the nodes did not come up", lambda: self.node_states() == {n: "idle" for n in self.nodes}, timeout)
        return self

    def node_states(self) -> dict[str, str]:
        out = self.slurm("sinfo", "-h", "-N", "-o", "%N %T", check=False)
        return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)

    def jobs(self) -> list[str]:
        """Ids of the jobs slurmctld still has queued or running."""
        return self.slurm("squeue", "-h", "-o", "%i").split()

    def wait_idle(self, timeout: float = 60) -> None:
        self._wait("jobs still queued", lambda: not self.jobs(), timeout)

    def stop(self) -> None:
        """Stop the daemons by PID: first the slurmds (once their jobs are gone), then slurmctld, then munged."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            try:
                if self.jobs():
                    self.slurm("scancel", "--full", *self.jobs(), check=False)
                self.wait_idle(30)
            except RuntimeError:
                pass
        for name in reversed(list(self.procs)):  # started munged, slurmctld, then the nodes
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self._logs:
            log.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()
