#!/usr/bin/env python3
"""Run a command under a pseudo-terminal and answer its interactive prompts.

    ptyrun.py [ANSWER ...] -- CMD [ARG ...]

Tests use it for programs that read secrets only from a terminal, such as neo-go's
password prompts (`neogo wallet init -a` asks for a name, a password and the password
again). The answers are sent in order, each followed by "\\r", one per prompt:

  * a prompt is output since the previous answer (minus the echo of that answer) that
    ends in ':', '>' or '?', followed by a short quiet moment (so the program has switched
    its terminal to no-echo mode before a password arrives);
  * failing that, any other output followed by PTYRUN_QUIET seconds of silence (default 0.5);
  * failing that, PTYRUN_SILENT seconds (default 3) without any output.

The command's output is relayed to stdout (CRLF turned into LF). ptyrun.py exits with the
command's exit code (128+N when killed by signal N), or 124 after the overall timeout
(PTYRUN_TIMEOUT seconds, default 60), when it kills the command.

Answers are visible in this process's argv: use it with test secrets only. Python stdlib only.
"""

import errno
import os
import pty
import select
import signal
import sys
import time

PROMPT_ENDINGS = (":", ">", "?")


def env_float(name, default):
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        sys.exit(f"ptyrun.py: {name} must be a number of seconds")


def usage():
    sys.stderr.write("usage: ptyrun.py [ANSWER ...] -- CMD [ARG ...]\n")
    sys.exit(2)


def main(argv):
    if "--" not in argv:
        usage()
    split = argv.index("--")
    answers, cmd = argv[:split], argv[split + 1 :]
    if not cmd:
        usage()

    timeout = env_float("PTYRUN_TIMEOUT", 60)
    quiet = env_float("PTYRUN_QUIET", 0.5)
    silent = env_float("PTYRUN_SILENT", 3)
    settle = 0.15  # after a prompt, before answering

    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its stdin/stdout/stderr and controlling terminal
        try:
            os.execvp(cmd[0], cmd)
        except OSError as e:
            sys.stderr.write(f"ptyrun.py: cannot run {cmd[0]}: {e}\n")
        os._exit(127)

    out = sys.stdout.buffer
    start = time.monotonic()
    last_output = start
    last_sent = start
    since_answer = b""  # output since the last answer
    echo = b""  # the last answer, as the terminal may echo it back
    pending = b""  # a trailing '\r' that may start a CRLF in the next chunk
    status = None

    def relay(data):
        nonlocal pending
        data = (pending + data).replace(b"\r\n", b"\n")
        pending = b""
        if data.endswith(b"\r"):
            data, pending = data[:-1], b"\r"
        out.write(data)
        out.flush()

    def kill_child():
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                return
            for _ in range(20):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
                time.sleep(0.05)

    while True:
        now = time.monotonic()
        if now - start > timeout:
            kill_child()
            relay(b"")
            sys.stderr.write(f"\nptyrun.py: timeout after {timeout:g} s running {' '.join(cmd)}\n")
            return 124
        try:
            ready, _, _ = select.select([fd], [], [], 0.05)
        except InterruptedError:
            continue
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError as e:
                if e.errno != errno.EIO:  # EIO: the child closed the terminal
                    raise
                data = b""
            if not data:
                break
            relay(data)
            since_answer += data
            last_output = time.monotonic()
            continue

        if not answers:
            continue
        # Nothing to read right now: is the program waiting for input?
        now = time.monotonic()
        text = since_answer
        if echo:
            text = text.replace(echo, b"", 1)
        text = text.strip()
        idle = now - last_output
        prompted = text.decode("utf-8", "replace").endswith(PROMPT_ENDINGS)
        if (
            (prompted and idle >= settle)
            or (text and idle >= quiet)
            or (now - max(last_output, last_sent) >= silent)
        ):
            answer = os.fsencode(answers.pop(0))
            os.write(fd, answer + b"\r")
            echo = answer
            since_answer = b""
            last_sent = time.monotonic()

    relay(b"")
    if pending:
        out.write(pending)
        out.flush()
    while status is None:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            status = 0
    os.close(fd)
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
