"""A packet capture for the isolation tests, run as root inside the test network namespace:

    ip netns exec NETNS python sniffer.py IFACE [IFACE ...]

Prints one JSON line per ARP frame and per ICMP echo (request or reply) seen on the interfaces:
the interface, whether the host sent it, the Ethernet source, and the addresses.  A first line
``{"ready": true}`` says the sockets are bound.  Standard library only (no tcpdump needed)."""

from __future__ import annotations

import json
import select
import socket
import sys
from typing import Any

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ARP, IPV4 = 0x0806, 0x0800
ICMP = 1


def mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def parse(frame: bytes) -> dict[str, Any] | None:
    """The fields worth a line, or None for any other frame."""
    if len(frame) < 14:
        return None
    ethertype = int.from_bytes(frame[12:14], "big")
    seen: dict[str, Any] = {"eth_src": mac(frame[6:12])}
    if ethertype == ARP and len(frame) >= 42:
        seen.update(kind="arp", op=int.from_bytes(frame[20:22], "big"), sender_mac=mac(frame[22:28]),
                    sender_ip=socket.inet_ntoa(frame[28:32]), target_ip=socket.inet_ntoa(frame[38:42]))
        return seen
    if ethertype == IPV4 and len(frame) >= 34 and frame[23] == ICMP:
        header = (frame[14] & 0x0F) * 4
        if len(frame) < 14 + header + 1:
            return None
        icmp_type = frame[14 + header]
        if icmp_type not in (0, 8):
            return None
        seen.update(kind="echo-request" if icmp_type == 8 else "echo-reply",
                    src=socket.inet_ntoa(frame[26:30]), dst=socket.inet_ntoa(frame[30:34]))
        return seen
    return None


def main(interfaces: list[str]) -> None:
    sockets = {}
    for name in interfaces:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((name, 0))
        sockets[sock] = name
    print(json.dumps({"ready": True}), flush=True)
    while True:
        readable, _, _ = select.select(list(sockets), [], [])
        for sock in readable:
            frame, address = sock.recvfrom(65535)
            seen = parse(frame)
            if seen is not None:
                seen.update(iface=sockets[sock], outgoing=address[2] == PACKET_OUTGOING)
                print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
