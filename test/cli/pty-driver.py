"""Runs a command in a pseudo-terminal and answers its prompts.

stdin: JSON { argv, env, cwd, steps: [[regex, text to send], ...], timeout }.
stdout: JSON { code, output, pending } -- output is everything the terminal showed; pending
is the steps whose prompt never appeared.
"""
import json, os, re, select, subprocess, sys, time

spec = json.load(sys.stdin)
master, slave = os.openpty()
# A terminal of a known size, as a user's would be.
import fcntl, struct, termios
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
child = subprocess.Popen(spec["argv"], env=spec["env"], cwd=spec.get("cwd"), stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
os.close(slave)
steps = list(spec.get("steps", []))
output = b""
seen = 0  # where the next prompt is looked for
deadline = time.time() + spec.get("timeout", 120)
while time.time() < deadline:
    ready, _, _ = select.select([master], [], [], 0.2)
    if ready:
        try:
            data = os.read(master, 65536)
        except OSError:
            break  # EIO: the child closed the terminal
        if not data:
            break
        output += data
    if steps:
        text = output[seen:].decode("utf-8", "replace")
        m = re.search(steps[0][0], text)
        if m:
            seen += len(text[: m.end()].encode("utf-8"))
            os.write(master, steps.pop(0)[1].encode())
    elif child.poll() is not None and not ready:
        break
try:
    code = child.wait(timeout=max(1, deadline - time.time()))
except subprocess.TimeoutExpired:
    child.kill()
    code = None
json.dump({"code": code, "output": output.decode("utf-8", "replace"), "pending": steps}, sys.stdout)
