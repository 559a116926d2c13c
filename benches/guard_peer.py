"""The peers and clients of benches/guard.sh, all on 127.0.0.1.

  serve PORT CERT KEY     TLS 1.3 servers, no resumption (no tickets):
                            PORT+0 echo, PORT+1 sink (reads to EOF),
                            PORT+2 source (reads "N\\n", sends N bytes, closes);
                          and a plain echo server on PORT+3. Runs until killed.
  up PORT BYTES           sends BYTES on one connection, half-closes, reads to EOF
  down PORT BYTES         asks for BYTES on one connection, reads them to EOF
  conns PORT N            N connections one after the other: one byte there and back
  tlsconns PORT N CA      the same, each a full TLS 1.3 handshake (no resumption)
  hold PORT N             N connections, one byte there and back on each, then
                          prints N and holds them until killed (at most 10 min)
"""

import asyncio
import socket
import ssl
import sys
import time

CHUNK = 1 << 16


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.num_tickets = 0  # every handshake a full one
    return ctx


async def echo(r, w):
    try:
        while d := await r.read(CHUNK):
            w.write(d)
            await w.drain()
    except OSError:
        pass
    finally:
        w.close()


async def sink(r, w):
    try:
        while await r.read(CHUNK):
            pass
    except OSError:
        pass
    finally:
        w.close()


async def source(r, w):
    try:
        n = int((await r.readline()).strip() or 0)
        block = b"\xa5" * CHUNK
        while n > 0:
            w.write(block[: min(n, CHUNK)])
            n -= min(n, CHUNK)
            await w.drain()
        # A TLS stream has no half-close here: close_notify and close.
    except OSError:
        pass
    finally:
        w.close()


async def serve(port, cert, key):
    ctx = server_ctx(cert, key)
    servers = [
        await asyncio.start_server(h, "127.0.0.1", port + i, ssl=ctx, backlog=4096)
        for i, h in enumerate([echo, sink, source])
    ]
    servers.append(await asyncio.start_server(echo, "127.0.0.1", port + 3, backlog=4096))
    await asyncio.gather(*(s.serve_forever() for s in servers))


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=60)


def read_to_eof(s):
    got = 0
    while d := s.recv(CHUNK):
        got += len(d)
    return got


def up(port, n):
    with connect(port) as s:
        block = b"\x5a" * CHUNK
        left = n
        while left > 0:
            s.sendall(block[: min(left, CHUNK)])
            left -= min(left, CHUNK)
        s.shutdown(socket.SHUT_WR)
        read_to_eof(s)


def down(port, n):
    with connect(port) as s:
        s.sendall(b"%d\n" % n)
        got = read_to_eof(s)
    if got != n:
        sys.exit(f"down: {got} of {n} bytes")


def one_byte(s):
    s.sendall(b"x")
    if s.recv(1) != b"x":
        sys.exit("no echo")


def conns(port, n):
    for _ in range(n):
        with connect(port) as s:
            one_byte(s)


def tlsconns(port, n, ca):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for _ in range(n):
        with ctx.wrap_socket(connect(port), server_hostname="localhost") as s:
            one_byte(s)


def hold(port, n):
    held = []
    for _ in range(n):
        s = connect(port)
        one_byte(s)
        held.append(s)
    print(len(held), flush=True)
    time.sleep(600)


def main(argv):
    what, port = argv[1], int(argv[2])
    if what == "serve":
        asyncio.run(serve(port, argv[3], argv[4]))
    elif what == "tlsconns":
        tlsconns(port, int(argv[3]), argv[4])
    else:
        {"up": up, "down": down, "conns": conns, "hold": hold}[what](port, int(argv[3]))


if __name__ == "__main__":
    main(sys.argv)
