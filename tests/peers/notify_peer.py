"""A service manager's end of sd_notify: bind NOTIFY_SOCKET, write each
datagram as one line (newlines shown as '|') to the output file."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
with open(out, "a", buffering=1) as f:
    f.write("listening\n")
    while True:
        data = sock.recv(65536)
        f.write(data.decode("utf-8", "replace").replace("\n", "|") + "\n")
