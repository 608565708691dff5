"""badproxy: a proxy that misbehaves, for tests/proxy-fail.sh.

  /usr/bin/python3 badproxy.py MODE PORTFILE
MODE: silent   accept TCP, read, never answer
      garbage  answer every request with bytes that are not HTTP
      huge     answer "HTTP/1.1 200" and then header lines without end
      hostile  answer 403 with a reason holding ESC and bytes not UTF-8
It listens on a free port of 127.0.0.1 (written to PORTFILE) and serves
every connection the same way until killed.
"""
import os, socket, sys, threading, time

mode, portfile = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % srv.getsockname()[1])
os.rename(portfile + ".tmp", portfile)


def serve(c):
    try:
        c.recv(65536)
        if mode == "garbage":
            c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n\x00\xff\xfe garbage\r\n\r\n")
        elif mode == "hostile":
            c.sendall(b"HTTP/1.1 403 Denied \x1b[31mred\xff\xfe\r\n\r\n")
        elif mode == "huge":
            c.sendall(b"HTTP/1.1 200 Connection established\r\n")
            line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
            for _ in range(1000):  # 1 MB of header, never ending
                c.sendall(line)
        while c.recv(65536):
            pass
    except OSError:
        pass
    finally:
        c.close()


while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
