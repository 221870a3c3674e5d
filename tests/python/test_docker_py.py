#!/usr/bin/env python3
"""docker-py (the pip package `docker`) against the daemon named by DOCKER_HOST.

A plain script, no pytest: every `test_*` function below runs in order, each on its own
containers and images (named uniquely per run), and the script prints `PASS`/`FAIL` per
test, the tracebacks of the failures, a closing `N passed, N failed` line, and exits
non-zero when anything failed. Expects `busybox:latest` on the daemon.
"""

import io
import json
import os
import re
import socket
import struct
import sys
import tarfile
import tempfile
import time
import traceback
import uuid

import docker
import docker.errors

IMAGE = "busybox:latest"
RUN_ID = "dpy{}{}".format(os.getpid(), uuid.uuid4().hex[:6])
TESTS = []
_counter = [0]


def test(fn):
    TESTS.append(fn)
    return fn


def name(what="c"):
    """A container or repository name unique to this run."""
    _counter[0] += 1
    return "{}-{}-{}".format(RUN_ID, what, _counter[0])


client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], timeout=30)
api = client.api


def sleeper(**kw):
    """A detached `sleep 300` container, labelled for cleanup."""
    kw.setdefault("name", name())
    return client.containers.run(IMAGE, ["sleep", "300"], detach=True, **kw)


def expect(exc_type, fn, *args, **kw):
    """Calls fn and returns the exception of exc_type it raised; fails otherwise."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("{} did not raise {}".format(fn, exc_type.__name__))


def eq(got, want, what=""):
    assert got == want, "{}: got {!r}, want {!r}".format(what, got, want)


def eventually(f, secs=10):
    until = time.time() + secs
    while time.time() < until:
        if f():
            return True
        time.sleep(0.05)
    return f()


def wait_status(c, status, secs=10):
    until = time.time() + secs
    while True:
        c.reload()
        if c.status == status:
            return
        if time.time() > until:
            raise AssertionError("{} is {!r}, not {!r}".format(c.name, c.status, status))
        time.sleep(0.05)


def demux_frames(data):
    """Splits a multiplexed attach/logs stream into (stdout, stderr) bytes."""
    out, err = b"", b""
    while data:
        assert len(data) >= 8, "short frame header {!r}".format(data)
        kind, size = struct.unpack(">BxxxL", data[:8])
        payload = data[8 : 8 + size]
        assert len(payload) == size, "short frame"
        if kind == 1:
            out += payload
        elif kind == 2:
            err += payload
        else:
            raise AssertionError("bad stream kind {}".format(kind))
        data = data[8 + size :]
    return out, err


# ---- system ----------------------------------------------------------------------------


@test
def test_ping():
    eq(client.ping(), True, "ping")


@test
def test_version():
    v = client.version()
    for k in ("Version", "ApiVersion", "MinAPIVersion", "Os", "Arch", "KernelVersion"):
        assert isinstance(v.get(k), str) and v[k], "version lacks {}: {}".format(k, v)
    eq(v["Os"], "linux", "Os")
    assert re.match(r"^1\.\d+$", v["ApiVersion"]), v["ApiVersion"]
    # docker-py negotiated (version="auto" default is the client's; ask explicitly).
    assert isinstance(v.get("Components"), list) and v["Components"], v
    eq(v["Components"][0]["Name"], "Engine", "first component")


@test
def test_info():
    info = client.info()
    assert info["NCPU"] >= 1, info["NCPU"]
    assert info["MemTotal"] > 0, info["MemTotal"]
    assert info["Images"] >= 1, info["Images"]
    for k in ("Containers", "ContainersRunning", "ContainersPaused", "ContainersStopped"):
        assert isinstance(info[k], int), (k, info[k])
    eq(
        info["Containers"],
        info["ContainersRunning"] + info["ContainersPaused"] + info["ContainersStopped"],
        "container counts",
    )
    eq(info["OSType"], "linux", "OSType")
    assert info["ServerVersion"], info
    assert isinstance(info["ID"], str) and info["ID"], info.get("ID")
    assert info["DockerRootDir"].startswith("/"), info["DockerRootDir"]


# ---- containers ------------------------------------------------------------------------


@test
def test_create_inspect_start_reload():
    n = name()
    c = client.containers.create(
        IMAGE,
        ["sleep", "300"],
        name=n,
        environment={"GREETING": "hi"},
        labels={"suite": RUN_ID, "role": "create"},
        working_dir="/tmp",
        hostname="boxhost",
    )
    eq(c.status, "created", "status after create")
    eq(c.name, n, "name")
    eq(c.labels, {"suite": RUN_ID, "role": "create"}, "labels")
    assert "GREETING=hi" in c.attrs["Config"]["Env"], c.attrs["Config"]["Env"]
    eq(c.attrs["Config"]["Cmd"], ["sleep", "300"], "Cmd")
    eq(c.attrs["Config"]["WorkingDir"], "/tmp", "WorkingDir")
    eq(c.attrs["Config"]["Hostname"], "boxhost", "Hostname")
    eq(c.attrs["Name"], "/" + n, "Name")
    assert IMAGE in c.image.tags, c.image.tags
    eq(c.attrs["Image"], c.image.id, "Image is the image id")
    eq(client.containers.get(n).id, c.id, "get by name")
    eq(client.containers.get(c.id[:12]).id, c.id, "get by short id")
    eq(c.attrs["State"]["Running"], False, "not running yet")
    c.start()
    c.reload()
    eq(c.status, "running", "status after start")
    assert c.attrs["State"]["Pid"] > 0, c.attrs["State"]
    assert c.attrs["State"]["StartedAt"].startswith(str(time.gmtime().tm_year)), c.attrs["State"]
    eq(c.exec_run("hostname").output, b"boxhost\n", "hostname")
    eq(c.exec_run(["sh", "-c", "echo $GREETING; pwd"]).output, b"hi\n/tmp\n", "env and workdir")


@test
def test_run_detached():
    c = client.containers.run(
        IMAGE, ["sh", "-c", "echo started; sleep 300"], detach=True, name=name()
    )
    assert isinstance(c, docker.models.containers.Container), c
    wait_status(c, "running")
    assert c.attrs["State"]["Running"], c.attrs["State"]
    assert eventually(lambda: c.logs() == b"started\n"), c.logs()


@test
def test_run_foreground_remove_returns_output():
    n = name()
    out = client.containers.run(
        IMAGE, ["sh", "-c", "echo hello; echo world"], name=n, remove=True
    )
    eq(out, b"hello\nworld\n", "run output")
    eq(client.containers.list(all=True, filters={"name": n}), [], "removed after run")


@test
def test_run_failure_raises_container_error():
    n = name()
    e = expect(
        docker.errors.ContainerError,
        client.containers.run,
        IMAGE,
        ["sh", "-c", "echo to-out; echo oops >&2; exit 3"],
        name=n,
        remove=True,
    )
    eq(e.exit_status, 3, "exit status")
    eq(e.stderr, b"oops\n", "stderr of the failed run")
    eq(client.containers.list(all=True, filters={"name": n}), [], "removed after failure")


@test
def test_run_missing_image_is_image_not_found():
    e = expect(
        docker.errors.ImageNotFound,
        client.containers.create,
        "{}-nosuchimage:latest".format(RUN_ID),
        name=name(),
    )
    eq(e.status_code, 404, "status")


@test
def test_logs_stdout_stderr():
    c = client.containers.run(
        IMAGE, ["sh", "-c", "echo out; echo err >&2"], detach=True, name=name()
    )
    eq(c.wait()["StatusCode"], 0, "exit")
    eq(c.logs(stdout=True, stderr=False), b"out\n", "stdout only")
    eq(c.logs(stdout=False, stderr=True), b"err\n", "stderr only")
    both = c.logs()
    eq(sorted(both.splitlines()), [b"err", b"out"], "both")
    # The raw API multiplexes the two streams (no tty).
    raw = api.logs(c.id, stdout=True, stderr=True)
    eq(sorted(raw.splitlines()), [b"err", b"out"], "api logs")


@test
def test_logs_tail():
    c = client.containers.run(
        IMAGE, ["sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"], detach=True, name=name()
    )
    c.wait()
    eq(c.logs(tail=2), b"line4\nline5\n", "tail=2")
    eq(c.logs(tail=0), b"", "tail=0")
    eq(c.logs(tail="all").count(b"\n"), 5, "tail=all")
    eq(c.logs(tail=10), b"line1\nline2\nline3\nline4\nline5\n", "tail past the start")


@test
def test_logs_timestamps():
    before = time.time()
    c = client.containers.run(IMAGE, ["sh", "-c", "echo a; echo b"], detach=True, name=name())
    c.wait()
    lines = c.logs(timestamps=True).decode().splitlines()
    eq(len(lines), 2, "two lines")
    for line, text in zip(lines, ["a", "b"]):
        m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{1,9})Z (.*)$", line)
        assert m, "no RFC3339Nano timestamp: {!r}".format(line)
        eq(m.group(3), text, "text after the timestamp")
        t = time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) - time.timezone
        assert before - 5 <= t <= time.time() + 5, "timestamp {} off".format(line)
    eq(c.logs(timestamps=False), b"a\nb\n", "without timestamps")


@test
def test_logs_stream_follow():
    c = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo one; sleep 0.5; echo two; sleep 0.5; echo three"],
        detach=True,
        name=name(),
    )
    chunks = []
    t0 = time.time()
    for chunk in c.logs(stream=True, follow=True):
        assert isinstance(chunk, bytes), chunk
        chunks.append(chunk)
    eq(b"".join(chunks), b"one\ntwo\nthree\n", "followed logs")
    assert time.time() - t0 < 15, "follow did not end with the container"
    assert len(chunks) >= 2, "expected chunks as they came: {!r}".format(chunks)
    # since= in the future: nothing.
    eq(c.logs(since=int(time.time()) + 60), b"", "since in the future")


@test
def test_exec_exit_code_and_output():
    c = sleeper()
    r = c.exec_run(["sh", "-c", "echo hi; exit 3"])
    eq(r.exit_code, 3, "exit code")
    eq(r.output, b"hi\n", "output")
    r = c.exec_run("echo plain")
    eq((r.exit_code, r.output), (0, b"plain\n"), "string command")
    # A missing program: the exec fails with 126/127 as docker's does, output says why.
    r = c.exec_run(["/no/such/binary"])
    assert r.exit_code in (126, 127), r
    # The low-level calls: exec_inspect reports the exit code.
    eid = api.exec_create(c.id, ["sh", "-c", "exit 5"])["Id"]
    eq(api.exec_start(eid), b"", "no output")
    info = api.exec_inspect(eid)
    eq((info["ExitCode"], info["Running"]), (5, False), "exec_inspect")
    eq(info["ContainerID"], c.id, "ContainerID")


@test
def test_exec_environment():
    c = sleeper(environment={"FROM_RUN": "1"})
    r = c.exec_run(["sh", "-c", "echo $FOO-$FROM_RUN"], environment={"FOO": "bar"})
    eq(r.output, b"bar-1\n", "env")
    r = c.exec_run(["sh", "-c", "echo $FROM_RUN"], environment=["FROM_RUN=override"])
    eq(r.output, b"override\n", "exec env overrides the container's")


@test
def test_exec_user_workdir():
    c = sleeper()
    r = c.exec_run(["sh", "-c", "id -u; id -g; pwd"], user="1000:1001", workdir="/tmp")
    eq((r.exit_code, r.output), (0, b"1000\n1001\n/tmp\n"), "user and workdir")
    eq(c.exec_run(["id", "-u"], user="root").output, b"0\n", "root by name")
    eq(c.exec_run("pwd").output, b"/\n", "default workdir")


@test
def test_exec_demux():
    c = sleeper()
    r = c.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"], demux=True)
    eq(r.exit_code, 2, "exit code")
    eq(r.output, (b"out\n", b"err\n"), "demuxed")
    r = c.exec_run(["sh", "-c", "echo only-out"], demux=True)
    eq(r.output, (b"only-out\n", None), "no stderr")
    r = c.exec_run(["sh", "-c", "echo only-err >&2"], stdout=False, demux=True)
    eq(r.output, (None, b"only-err\n"), "stdout=False")


@test
def test_exec_stream():
    c = sleeper()
    t0 = time.time()
    r = c.exec_run(["sh", "-c", "echo a; sleep 0.5; echo b"], stream=True)
    eq(r.exit_code, None, "no exit code while streaming")
    chunks = list(r.output)
    eq(b"".join(chunks), b"a\nb\n", "streamed output")
    assert time.time() - t0 >= 0.4, "stream ended early"
    r = c.exec_run(["sh", "-c", "echo x; echo y >&2"], stream=True, demux=True)
    frames = list(r.output)
    eq(b"".join(o for o, _ in frames if o), b"x\n", "streamed demuxed stdout")
    eq(b"".join(e for _, e in frames if e), b"y\n", "streamed demuxed stderr")


@test
def test_exec_tty():
    c = sleeper()
    r = c.exec_run(["sh", "-c", "tty >/dev/null && echo tty"], tty=True)
    eq(r.exit_code, 0, "exit code")
    eq(r.output, b"tty\r\n", "a tty turns \\n into \\r\\n")


@test
def test_attach_stream_logs():
    # Attached before the start (as `docker start -a`): nothing can be missed. (After
    # the start, docker-py may lose what arrives with the 101 response: it reads the
    # raw socket past http.client's buffer, docker/docker-py#1770.)
    c = client.containers.create(
        IMAGE, ["sh", "-c", "echo one; echo err1 >&2; sleep 0.3; echo two"], name=name()
    )
    gen = c.attach(stdout=True, stderr=False, stream=True, logs=True)
    c.start()
    eq(b"".join(gen), b"one\ntwo\n", "attached stdout only")
    eq(c.wait(timeout=10)["StatusCode"], 0, "exit")
    # Without logs, what came before the attach is not replayed.
    c = client.containers.run(
        IMAGE, ["sh", "-c", "echo early; sleep 1; echo late >&2"], detach=True, name=name()
    )
    assert eventually(lambda: c.logs() == b"early\n"), c.logs()
    got = list(c.attach(stdout=True, stderr=True, stream=True, logs=False, demux=True))
    eq(got, [(None, b"late\n")], "live stderr, demuxed")
    # Not streaming: all of it once the container exits.
    c = client.containers.create(IMAGE, ["sh", "-c", "echo whole"], name=name())
    sock_gen = c.attach(stdout=True, stderr=True, stream=True, logs=True)
    c.start()
    eq(b"".join(sock_gen), b"whole\n", "short-lived container")


@test
def test_attach_socket_stdin():
    c = client.containers.create(IMAGE, ["cat"], stdin_open=True, name=name())
    c.start()
    sock = c.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
    raw = getattr(sock, "_sock", sock)
    raw.settimeout(10)
    raw.sendall(b"ping\n")
    buf = b""
    while len(buf) < 8 + 5:
        chunk = raw.recv(4096)
        if not chunk:
            break
        buf += chunk
    eq(demux_frames(buf), (b"ping\n", b""), "echoed through cat")
    # Closing stdin ends cat: the container exits 0.
    raw.shutdown(socket.SHUT_WR)
    eq(c.wait(timeout=10)["StatusCode"], 0, "cat exit")
    sock.close()


@test
def test_stop():
    c = sleeper()
    t0 = time.time()
    c.stop(timeout=1)
    assert time.time() - t0 < 8, "stop took {:.1f}s".format(time.time() - t0)
    c.reload()
    eq(c.status, "exited", "status")
    # sleep as PID 1 ignores SIGTERM: killed after the timeout.
    eq(c.attrs["State"]["ExitCode"], 137, "exit code")
    assert c.attrs["State"]["FinishedAt"] >= c.attrs["State"]["StartedAt"], c.attrs["State"]
    # Stopping a stopped container is a no-op (304), not an error, for docker-py.
    c.stop(timeout=1)


@test
def test_kill():
    c = sleeper()
    c.kill()
    eq(c.wait()["StatusCode"], 137, "SIGKILL")
    c.reload()
    eq(c.status, "exited", "status")
    e = expect(docker.errors.APIError, c.kill)
    eq(e.status_code, 409, "kill of a stopped container")
    assert "is not running" in e.explanation, e.explanation
    c2 = client.containers.run(
        IMAGE, ["sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.1; done"],
        detach=True, name=name(),
    )
    wait_status(c2, "running")
    time.sleep(0.3)  # let the shell set its trap
    c2.kill(signal="SIGUSR1")
    eq(c2.wait(timeout=10)["StatusCode"], 42, "signal by name")
    e = expect(docker.errors.APIError, sleeper().kill, signal="SIGNOPE")
    eq(e.status_code, 400, "bad signal")


@test
def test_wait():
    c = client.containers.run(IMAGE, ["sh", "-c", "exit 7"], detach=True, name=name())
    r = c.wait(timeout=10)
    eq(r["StatusCode"], 7, "StatusCode")
    assert r.get("Error") is None, r
    # Waiting on an exited container answers at once.
    eq(c.wait(timeout=5)["StatusCode"], 7, "second wait")
    e = expect(docker.errors.NotFound, api.wait, "{}-missing".format(RUN_ID))
    eq(e.status_code, 404, "wait on a missing container")


@test
def test_restart():
    c = sleeper()
    c.reload()
    pid, started = c.attrs["State"]["Pid"], c.attrs["State"]["StartedAt"]
    c.restart(timeout=1)
    c.reload()
    eq(c.status, "running", "status")
    assert c.attrs["State"]["Pid"] not in (0, pid), (pid, c.attrs["State"]["Pid"])
    assert c.attrs["State"]["StartedAt"] > started, (started, c.attrs["State"]["StartedAt"])
    # A stopped container restarts too.
    c.stop(timeout=0)
    c.restart()
    wait_status(c, "running")


@test
def test_pause_unpause():
    c = sleeper()
    c.pause()
    c.reload()
    eq(c.status, "paused", "status")
    eq(c.attrs["State"]["Paused"], True, "Paused")
    e = expect(docker.errors.APIError, c.pause)
    eq(e.status_code, 409, "pause twice")
    e = expect(docker.errors.APIError, c.exec_run, "true")
    eq(e.status_code, 409, "exec in a paused container")
    c.unpause()
    c.reload()
    eq(c.status, "running", "status after unpause")
    eq(c.attrs["State"]["Paused"], False, "Paused after unpause")
    e = expect(docker.errors.APIError, c.unpause)
    eq(e.status_code, 409, "unpause of a running container")
    eq(c.exec_run("true").exit_code, 0, "exec after unpause")


@test
def test_rename():
    old, new = name(), name()
    c = sleeper(name=old)
    c.rename(new)
    c.reload()
    eq(c.name, new, "new name")
    eq(client.containers.get(new).id, c.id, "get by new name")
    e = expect(docker.errors.NotFound, client.containers.get, old)
    eq(e.status_code, 404, "old name gone")
    other = sleeper()
    e = expect(docker.errors.APIError, other.rename, new)
    eq(e.status_code, 409, "rename to a name in use")


@test
def test_top():
    c = sleeper()
    t = c.top()
    assert "PID" in t["Titles"] and "CMD" in t["Titles"], t["Titles"]
    cmd = t["Titles"].index("CMD")
    cmds = [p[cmd] for p in t["Processes"]]
    assert "sleep 300" in cmds, cmds
    t = c.top(ps_args="-o pid,comm")
    eq(t["Titles"], ["PID", "COMMAND"], "ps_args titles")
    assert ["sleep"] == [p[1] for p in t["Processes"]], t["Processes"]
    stopped = client.containers.create(IMAGE, ["true"], name=name())
    e = expect(docker.errors.APIError, stopped.top)
    eq(e.status_code, 409, "top of a container that is not running")


@test
def test_put_get_archive():
    c = sleeper()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"hi there\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        info.mode = 0o640
        tar.addfile(info, io.BytesIO(data))
    eq(c.put_archive("/tmp", buf.getvalue()), True, "put_archive")
    eq(c.exec_run(["cat", "/tmp/hello.txt"]).output, b"hi there\n", "file in the container")
    eq(c.exec_run(["stat", "-c", "%a", "/tmp/hello.txt"]).output, b"640\n", "mode kept")
    chunks, stat = c.get_archive("/tmp/hello.txt")
    eq(stat["name"], "hello.txt", "stat name")
    eq(stat["size"], 9, "stat size")
    raw = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        eq(tar.getnames(), ["hello.txt"], "names in the archive")
        eq(tar.extractfile("hello.txt").read(), b"hi there\n", "content")
    e = expect(docker.errors.NotFound, c.get_archive, "/no/such/path")
    eq(e.status_code, 404, "missing path")
    e = expect(docker.errors.NotFound, c.put_archive, "/no/such/dir", buf.getvalue())
    eq(e.status_code, 404, "put into a missing directory")


@test
def test_diff():
    c = sleeper()
    r = c.exec_run(["sh", "-c", "echo x > /tmp/added && rm /bin/yes && echo y >> /etc/hosts.new"])
    eq(r.exit_code, 0, "changes made: {!r}".format(r.output))
    changes = {(ch["Path"], ch["Kind"]) for ch in c.diff()}
    for want in [("/tmp", 0), ("/tmp/added", 1), ("/bin/yes", 2), ("/etc/hosts.new", 1)]:
        assert want in changes, "{} not in {}".format(want, sorted(changes))


@test
def test_commit():
    c = sleeper()
    c.exec_run(["sh", "-c", "echo committed > /data.txt"])
    repo = name("img")
    img = c.commit(
        repository=repo,
        tag="v1",
        message="a message",
        author="someone <s@example.com>",
        changes=["ENV COMMITTED=yes", "WORKDIR /tmp"],
    )
    assert img.id.startswith("sha256:"), img.id
    eq(img.tags, ["{}:v1".format(repo)], "tags")
    eq(img.attrs["Author"], "someone <s@example.com>", "Author")
    eq(img.attrs["Comment"], "a message", "Comment")
    assert "COMMITTED=yes" in img.attrs["Config"]["Env"], img.attrs["Config"]["Env"]
    eq(img.attrs["Config"]["WorkingDir"], "/tmp", "WorkingDir")
    out = client.containers.run(
        "{}:v1".format(repo), ["sh", "-c", "cat /data.txt; echo $COMMITTED; pwd"], remove=True
    )
    eq(out, b"committed\nyes\n/tmp\n", "a container of the committed image")
    eq(img.history()[0]["Comment"], "a message", "history's top entry")


@test
def test_export():
    c = client.containers.create(IMAGE, ["true"], name=name())
    data = b"".join(c.export())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = {n.lstrip("./").rstrip("/") for n in tar.getnames()}
    for want in ("bin/busybox", "bin/sh", "etc", "proc", "dev"):
        assert want in names, "{} not exported ({} entries)".format(want, len(names))


@test
def test_list_filters():
    label = "pick-{}".format(uuid.uuid4().hex[:6])
    running = sleeper(labels={"pick": label, "state": "up"})
    created = client.containers.create(IMAGE, ["true"], name=name(), labels={"pick": label})
    exited = client.containers.run(
        IMAGE, ["true"], detach=True, name=name(), labels={"pick": label}
    )
    exited.wait()
    ids = lambda cs: sorted(x.id for x in cs)  # noqa: E731
    eq(ids(client.containers.list(filters={"label": "pick=" + label})), [running.id], "running only")
    eq(
        ids(client.containers.list(all=True, filters={"label": "pick=" + label})),
        sorted([running.id, created.id, exited.id]),
        "all",
    )
    eq(
        ids(client.containers.list(all=True, filters={"label": ["pick=" + label, "state=up"]})),
        [running.id],
        "two labels",
    )
    eq(
        ids(client.containers.list(all=True, filters={"label": "pick=" + label, "status": "exited"})),
        [exited.id],
        "status=exited",
    )
    eq(
        ids(client.containers.list(all=True, filters={"label": "pick=" + label, "status": "created"})),
        [created.id],
        "status=created",
    )
    eq(ids(client.containers.list(all=True, filters={"name": created.name})), [created.id], "name")
    eq(ids(client.containers.list(all=True, filters={"id": exited.id[:12]})), [exited.id], "id")
    anc = client.containers.list(all=True, filters={"ancestor": "busybox", "label": "pick=" + label})
    eq(len(anc), 3, "ancestor")
    eq(len(client.containers.list(all=True, limit=1)), 1, "limit")
    # The newest first.
    eq(client.containers.list(all=True, limit=1)[0].id, exited.id, "newest first")
    e = expect(docker.errors.APIError, client.containers.list, filters={"bogus": "x"})
    eq(e.status_code, 400, "an unknown filter")
    # sparse lists still carry what docker-py reads.
    c = client.containers.list(filters={"id": running.id}, sparse=True)[0]
    eq(c.attrs["Labels"]["pick"], label, "list labels")
    eq(c.attrs["State"], "running", "list State")
    assert c.attrs["Status"].startswith("Up"), c.attrs["Status"]
    eq(c.attrs["Names"], ["/" + running.name], "Names")


@test
def test_remove():
    c = sleeper()
    e = expect(docker.errors.APIError, c.remove)
    eq(e.status_code, 409, "remove a running container")
    assert "container is running" in e.explanation, e.explanation
    c.remove(force=True)
    e = expect(docker.errors.NotFound, client.containers.get, c.id)
    eq(e.status_code, 404, "gone")
    missing = "{}-missing".format(RUN_ID)
    e = expect(docker.errors.NotFound, api.remove_container, missing)
    eq(e.explanation, "No such container: {}".format(missing), "message")
    stopped = client.containers.create(IMAGE, ["true"], name=name())
    stopped.remove()
    eq(client.containers.list(all=True, filters={"id": stopped.id}), [], "removed")


@test
def test_containers_prune():
    label = "prune-{}".format(uuid.uuid4().hex[:6])
    running = sleeper(labels={"prune": label})
    exited = client.containers.run(IMAGE, ["true"], detach=True, name=name(), labels={"prune": label})
    exited.wait()
    created = client.containers.create(IMAGE, ["true"], name=name(), labels={"prune": label})
    other = client.containers.create(IMAGE, ["true"], name=name())
    r = client.containers.prune(filters={"label": "prune=" + label})
    eq(sorted(r["ContainersDeleted"]), sorted([exited.id, created.id]), "pruned")
    assert isinstance(r["SpaceReclaimed"], int), r
    eq(client.containers.get(running.id).status, "running", "the running one stays")
    eq(client.containers.get(other.id).id, other.id, "one without the label stays")
    r = client.containers.prune(filters={"label": "prune=" + label, "until": "1h"})
    eq(r["ContainersDeleted"], None, "nothing older than an hour")
    e = expect(docker.errors.APIError, client.containers.prune, filters={"status": "exited"})
    eq(e.status_code, 400, "a filter prune does not take")


# ---- images ----------------------------------------------------------------------------


@test
def test_images_list():
    imgs = client.images.list()
    assert any(IMAGE in i.tags for i in imgs), [i.tags for i in imgs]
    named = client.images.list(name="busybox")
    assert named and all(any(t.startswith("busybox:") for t in i.tags) for i in named), named
    eq(client.images.list(name="{}-none".format(RUN_ID)), [], "unknown name")
    raw = api.images()
    bb = [i for i in raw if IMAGE in (i.get("RepoTags") or [])][0]
    assert bb["Id"].startswith("sha256:") and bb["Size"] > 0 and bb["Created"] > 0, bb
    dangling = client.images.list(filters={"dangling": True})
    assert all(not i.tags for i in dangling), [i.tags for i in dangling]


@test
def test_image_get():
    img = client.images.get(IMAGE)
    assert img.id.startswith("sha256:"), img.id
    assert IMAGE in img.tags, img.tags
    eq(img.attrs["Os"], "linux", "Os")
    eq(img.attrs["Architecture"] in ("amd64", "arm64", "386", "arm"), True, "Architecture")
    eq(client.images.get(img.id).id, img.id, "get by id")
    eq(client.images.get(img.short_id).id, img.id, "get by short id")
    e = expect(docker.errors.ImageNotFound, client.images.get, "{}-nope:latest".format(RUN_ID))
    eq(e.status_code, 404, "missing image")


@test
def test_image_tag():
    img = client.images.get(IMAGE)
    repo = name("tag")
    eq(img.tag(repo, "t1"), True, "tag")
    eq(img.tag(repo), True, "tag without tag: latest")
    img.reload()
    assert "{}:t1".format(repo) in img.tags and "{}:latest".format(repo) in img.tags, img.tags
    eq(client.images.get("{}:t1".format(repo)).id, img.id, "the new tag names the image")
    e = expect(docker.errors.APIError, img.tag, "Bad/Upper", "x")
    eq(e.status_code, 400, "invalid reference")
    e = expect(docker.errors.ImageNotFound, api.tag, "{}-nope".format(RUN_ID), repo, "t2")
    eq(e.status_code, 404, "tag a missing image")


@test
def test_image_save_load():
    img = client.images.get(IMAGE)
    ref = "{}:saved".format(name("save"))
    img.tag(ref)
    with tempfile.TemporaryFile() as f:
        n = 0
        for chunk in client.images.get(ref).save(named=ref):
            f.write(chunk)
            n += len(chunk)
        assert n > 100000, "saved only {} bytes".format(n)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            names = tar.getnames()
            assert "manifest.json" in names, names
            manifest = json.load(tar.extractfile("manifest.json"))
        eq(manifest[0]["RepoTags"], [ref], "RepoTags in manifest.json")
        client.images.remove(ref)
        expect(docker.errors.ImageNotFound, client.images.get, ref)
        f.seek(0)
        loaded = client.images.load(f.read())
    eq([i.id for i in loaded], [img.id], "loaded image")
    eq(client.images.get(ref).id, img.id, "the tag is back")


@test
def test_image_remove():
    img = client.images.get(IMAGE)
    ref = "{}:rm".format(name("rm"))
    img.tag(ref)
    client.images.remove(ref)
    e = expect(docker.errors.ImageNotFound, client.images.get, ref)
    eq(e.status_code, 404, "gone")
    e = expect(docker.errors.ImageNotFound, client.images.remove, ref)
    eq(e.status_code, 404, "remove of a missing image")
    assert "No such image" in e.explanation, e.explanation
    # An image whose only tag a container uses: 409 without force, by tag or by id.
    c = sleeper()
    only = client.images.get(c.commit(repository=name("only"), tag="x").id)
    ref2 = only.tags[0]
    user = client.containers.create(ref2, ["true"], name=name())
    e = expect(docker.errors.APIError, client.images.remove, ref2)
    eq(e.status_code, 409, "the only tag of an image in use")
    assert "must force" in e.explanation and user.id[:12] in e.explanation, e.explanation
    e = expect(docker.errors.APIError, client.images.remove, only.id)
    eq(e.status_code, 409, "an image in use, by id")
    assert "must be forced" in e.explanation, e.explanation
    # Forced while a container runs it: only untagged, and the id stays unforceable.
    client.containers.run(only.id, ["sleep", "300"], detach=True, name=name())
    eq(api.remove_image(ref2, force=True), [{"Untagged": ref2}], "forced: untagged only")
    eq(client.images.get(only.id).tags, [], "the image stays, dangling")
    e = expect(docker.errors.APIError, api.remove_image, only.id, force=True)
    eq(e.status_code, 409, "an image a running container uses")
    assert "cannot be forced" in e.explanation, e.explanation
    eq(client.images.get(IMAGE).id, img.id, "busybox stays")


@test
def test_image_history():
    h = client.images.get(IMAGE).history()
    assert isinstance(h, list) and h, h
    for k in ("Id", "Created", "CreatedBy", "Size", "Tags", "Comment"):
        assert k in h[0], "history lacks {}: {}".format(k, h[0])
    assert IMAGE in (h[0]["Tags"] or []), h[0]
    eq(h[0]["Id"], client.images.get(IMAGE).id, "top entry is the image")
    e = expect(docker.errors.ImageNotFound, api.history, "{}-nope".format(RUN_ID))
    eq(e.status_code, 404, "missing image")


@test
def test_image_prune():
    c = sleeper()
    dangling = c.commit()  # no repository: a dangling image
    eq(dangling.tags, [], "no tags")
    assert dangling.id in [i.id for i in client.images.list(filters={"dangling": True})]
    r = client.images.prune(filters={"dangling": True})
    deleted = [d.get("Deleted") for d in (r.get("ImagesDeleted") or [])]
    assert dangling.id in deleted, r
    assert isinstance(r["SpaceReclaimed"], int), r
    expect(docker.errors.ImageNotFound, client.images.get, dangling.id)
    client.images.get(IMAGE)  # tagged images stay


@test
def test_events():
    since = int(time.time()) - 1
    c = client.containers.run(IMAGE, ["sh", "-c", "exit 3"], detach=True, name=name())
    c.wait()
    until = int(time.time()) + 1
    evs = list(client.events(decode=True, since=since, until=until, filters={"container": c.id}))
    actions = [e["Action"] for e in evs]
    for a in ("create", "start", "die"):
        assert a in actions, "no {} in {}".format(a, actions)
    assert actions.index("create") < actions.index("start") < actions.index("die"), actions
    die = [e for e in evs if e["Action"] == "die"][0]
    eq(die["Type"], "container", "Type")
    eq(die["Actor"]["ID"], c.id, "Actor.ID")
    eq(die["Actor"]["Attributes"]["name"], c.name, "name attribute")
    eq(die["Actor"]["Attributes"]["exitCode"], "3", "exitCode attribute")
    eq(die["Actor"]["Attributes"]["image"], IMAGE, "image attribute, as given at create")
    eq(die["status"], "die", "legacy status")
    eq(die["id"], c.id, "legacy id")
    assert since <= die["time"] <= until, die
    eq(die["timeNano"] // 10**9, die["time"], "timeNano")
    # Type filter, and events of images.
    repo = name("ev")
    client.images.get(IMAGE).tag(repo, "t")
    until = int(time.time()) + 1
    img_evs = list(
        client.events(decode=True, since=since, until=until, filters={"type": "image"})
    )
    assert all(e["Type"] == "image" for e in img_evs), img_evs
    tags = [e for e in img_evs if e["Action"] == "tag"]
    assert any(e["Actor"]["Attributes"].get("name") == "{}:t".format(repo) for e in tags), tags


def cleanup():
    for c in client.containers.list(all=True, filters={"name": RUN_ID}):
        try:
            c.remove(force=True)
        except docker.errors.APIError:
            pass
    for img in client.images.list():
        for t in img.tags:
            if t.startswith(RUN_ID):
                try:
                    client.images.remove(t, force=True)
                except docker.errors.APIError:
                    pass


def main():
    only = sys.argv[1:]
    passed, failed = [], []
    for fn in TESTS:
        if only and fn.__name__ not in only:
            continue
        t0 = time.time()
        try:
            fn()
        except Exception:
            failed.append(fn.__name__)
            print("FAIL {} ({:.1f}s)".format(fn.__name__, time.time() - t0))
            traceback.print_exc(file=sys.stdout)
        else:
            passed.append(fn.__name__)
            print("PASS {} ({:.1f}s)".format(fn.__name__, time.time() - t0))
        sys.stdout.flush()
    try:
        cleanup()
    except Exception:
        traceback.print_exc(file=sys.stdout)
    if failed:
        print("failed: " + ", ".join(failed))
    print("{} passed, {} failed".format(len(passed), len(failed)))
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
