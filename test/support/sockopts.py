# Prints, as JSON, the TCP options of the sockets process PID holds on local port PORT: TCP_NODELAY
# and the keepalive settings, read with getsockopt on a duplicate got through pidfd_getfd (Linux
# 5.6+, ptrace rights over PID). Node has no getsockopt, and ss shows neither TCP_NODELAY nor
# TCP_KEEPINTVL/TCP_KEEPCNT.
import ctypes, json, os, socket, sys

SYS_PIDFD_GETFD = 438
pid, port = int(sys.argv[1]), int(sys.argv[2])
libc = ctypes.CDLL(None, use_errno=True)
pidfd = os.pidfd_open(pid)
found = []
for name in os.listdir(f"/proc/{pid}/fd"):
    fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
    if fd < 0:
        continue
    try:
        s = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)
        continue
    try:
        if s.family in (socket.AF_INET, socket.AF_INET6) and s.type == socket.SOCK_STREAM:
            try:
                peer = s.getpeername()
            except OSError:
                peer = None
            if peer is not None and s.getsockname()[1] == port:
                opt = lambda level, o: s.getsockopt(level, o)
                found.append({
                    "nodelay": opt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
                    "keepalive": opt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    "idle": opt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    "interval": opt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    "count": opt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                })
    finally:
        s.detach()
        os.close(fd)
print(json.dumps(found))
