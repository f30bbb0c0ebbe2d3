"""The simulated reporters' connections (simulator/report_http.py, reporter.md §1): what reaches the
API is the reporter's request, and a kept-alive connection the server closed is replaced at once
instead of sending the report into the reporter's back-off."""

from __future__ import annotations

import asyncio
import json
from typing import List, Tuple

from bos_reporter.payload import report_body, report_path
from bos_sim.cluster import Cluster
from bos_sim.config import DEFAULT_DELAYS, REPORT_CONCURRENCY, SimConfig
from bos_sim.inventory import generate
from bos_sim import report_http
from bos_sim.report_http import ReportConnection, ReportError, request_bytes


async def _two_reports_to_a_server_that_closes_every_connection() -> List[Tuple[bytes, bytes]]:
    seen: List[Tuple[bytes, bytes]] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        seen.append((head, await reader.readexactly(length)))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # keep-alive by default, closed anyway (as an idle time-out does)

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = ReportConnection(f"http://127.0.0.1:{port}/v2")
    try:
        for xname in ("x1000c0s0b0n0", "x1000c0s0b0n1"):
            request = request_bytes(conn.netloc, conn.prefix + report_path(xname), "node-token",
                                    report_body(xname, "tok-1"))
            assert await conn.send(request) == (200, b"{}")
    finally:
        conn.close()
        server.close()
        await server.wait_closed()
    return seen


def test_a_report_is_the_reporters_patch_and_survives_a_closed_keep_alive_connection() -> None:
    seen = asyncio.run(_two_reports_to_a_server_that_closes_every_connection())
    assert len(seen) == 2  # the second went out on a new connection, at once
    head, body = seen[1]
    lines = head.decode().split("\r\n")
    assert lines[0] == "PATCH /v2/components/x1000c0s0b0n1 HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:] if line)
    assert headers["Authorization"] == "Bearer node-token"
    assert headers["Content-Type"] == "application/json" and headers["Accept"] == "application/json"
    assert headers["Prefer"] == "return=minimal"
    assert json.loads(body) == {"id": "x1000c0s0b0n1", "actual_state": {"bss_token": "tok-1"}}


ANSWERS = [  # (what the server writes, what the report sees)
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", (200, b"{}")),
    (b"HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
     (409, b"abcde")),
    (b"HTTP/1.1 204 No Content\r\n\r\n", (204, b"")),
    (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", (200, b"until the end")),
]


async def _read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request (head and Content-Length body); False once the client has closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return False
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    await reader.readexactly(length)
    return True


async def _answers_written_a_byte_at_a_time() -> List[Tuple[int, bytes]]:
    answers = iter(ANSWERS)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _read_request(reader):
            text, _ = next(answers)
            for i in range(len(text)):  # the answer arrives in as many pieces as it has bytes
                writer.write(text[i:i + 1])
                await writer.drain()
                await asyncio.sleep(0)
            if text.startswith(b"HTTP/1.0"):
                break
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = ReportConnection(f"http://127.0.0.1:{port}/v2")
    seen = []
    try:
        for _ in ANSWERS:
            request = request_bytes(conn.netloc, conn.prefix + report_path("x1"), "t", report_body("x1", "tok"))
            seen.append(await conn.send(request))
    finally:
        conn.close()
        server.close()
        await server.wait_closed()
    return seen


def test_answers_are_framed_however_they_arrive() -> None:
    """Content-Length, chunked (with an extension), 204 and an answer delimited by the end of the
    connection, each written a byte at a time on one kept-alive connection."""
    assert asyncio.run(_answers_written_a_byte_at_a_time()) == [want for _, want in ANSWERS]


async def _server_answering_the_first_request() -> Tuple[asyncio.AbstractServer, ReportConnection, bytes, List[int]]:
    """A server that answers the first request it reads and no other, a connection to it, a report
    to send, and how many requests the server read (the list's one item)."""
    requests = [0]

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await _read_request(reader):
            requests[0] += 1
            if requests[0] == 1:  # only the first request is answered
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    conn = ReportConnection(f"http://127.0.0.1:{port}/v2")
    return server, conn, request_bytes(conn.netloc, conn.prefix + report_path("x1"), "t", report_body("x1", "tok")), requests


async def _reports_to_a_server_that_stops_answering() -> Tuple[Tuple[int, bytes], str, int]:
    server, conn, request, requests = await _server_answering_the_first_request()
    try:
        first = await conn.send(request)
        try:
            await conn.send(request)
            error = ""
        except ReportError as exc:
            error = str(exc)
    finally:
        conn.close()
        server.close()
        await server.wait_closed()
    return first, error, requests[0]


def test_a_report_without_an_answer_times_out_after_one_more_try_on_a_new_connection(monkeypatch) -> None:
    from bos_sim import report_http
    monkeypatch.setattr(report_http, "READ_TIMEOUT", 0.2)
    first, error, requests = asyncio.run(_reports_to_a_server_that_stops_answering())
    assert first == (200, b"{}") and error == "TimeoutError"
    assert requests == 3  # the kept-alive connection's try, then one on a new connection


async def _time_to_give_up_after_an_answered_request(gap: float) -> Tuple[str, float]:
    """A request answered at once, `gap` seconds idle, then one the server never answers: the
    loop seconds from sending the second to its ReportError."""
    server, conn, request, _requests = await _server_answering_the_first_request()
    loop = asyncio.get_running_loop()
    try:
        assert await conn.send(request) == (200, b"{}")
        await asyncio.sleep(gap)  # idle time between two reports on the connection, not a synchronisation
        sent = loop.time()
        try:
            await conn.send(request)
            error = ""
        except ReportError as exc:
            error = str(exc)
        waited = loop.time() - sent
    finally:
        conn.close()
        server.close()
        await server.wait_closed()
    return error, waited


def test_each_request_gets_the_whole_read_time_out_from_its_own_sending(monkeypatch) -> None:
    """The connection's one timer, set for the first request's deadline, waits on for the request
    in flight when it fires: the second request (sent when the first one's deadline is near) times
    out READ_TIMEOUT after it was sent, and so does its retry on a new connection."""
    from bos_sim import report_http
    monkeypatch.setattr(report_http, "READ_TIMEOUT", 0.3)
    error, waited = asyncio.run(_time_to_give_up_after_an_answered_request(0.2))
    assert error == "TimeoutError"
    assert waited >= 2 * 0.3 - 0.01  # two whole time-outs (loop timers may fire up to 1 ms early)


async def _most_reports_in_flight_at_once(nodes: int) -> Tuple[int, int]:
    """(the most reports a stand-in BOS held unanswered at once, reports answered) when `nodes`
    booted nodes of a default simulator report: the stand-in answers nothing until as many
    reports as the simulator has connections are open, then answers every report at once."""
    in_flight = most = 0
    release, answered = asyncio.Event(), asyncio.Event()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, most
        while await _read_request(reader):
            in_flight += 1
            most = max(most, in_flight)
            if in_flight >= REPORT_CONCURRENCY:
                release.set()
            await release.wait()
            in_flight -= 1
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, backlog=nodes)
    port = server.sockets[0].getsockname()[1]
    cluster = Cluster(generate(nodes), SimConfig(bos_url=f"http://127.0.0.1:{port}/v2", jitter=0,
                                                 delays={kind: 0.0 for kind in DEFAULT_DELAYS}))
    cluster.bss.put(list(cluster.nodes), "quiet", "s3://b/kernel", "s3://b/initrd")
    reported = cluster.reporting._reported

    def counted(*args: object) -> None:
        reported(*args)  # type: ignore[arg-type]
        if cluster.reporting.succeeded == nodes:
            answered.set()

    cluster.reporting._reported = counted  # type: ignore[method-assign]
    clock = asyncio.ensure_future(cluster.scheduler.run())
    await cluster.reporting.start()
    try:
        for node in cluster.nodes.values():
            cluster.engine.turn_on(node)
        await asyncio.wait_for(release.wait(), 30)  # never set when fewer are sent at once
        await asyncio.wait_for(answered.wait(), 30)
    finally:
        clock.cancel()
        await cluster.reporting.stop()
        server.close()
        await server.wait_closed()
    return most, cluster.reporting.succeeded


def test_the_simulator_sends_as_many_reports_at_once_as_it_has_connections(monkeypatch) -> None:
    """A real cluster's nodes report independently, thousands at once after a boot wave; the API
    coalesces concurrent reports into one store round trip (write_batcher.py), so the simulator
    keeps REPORT_CONCURRENCY (256) in flight: with 64 a 50,000-node boot's reports queued behind
    them and the stack spent a fifth more CPU on them (issue 13)."""
    assert REPORT_CONCURRENCY == SimConfig().report_concurrency >= 256
    monkeypatch.setattr(report_http, "READ_TIMEOUT", 3600.0)  # no report is sent again on a new connection
    most, answered = asyncio.run(_most_reports_in_flight_at_once(REPORT_CONCURRENCY + 40))
    assert most == REPORT_CONCURRENCY
    assert answered == REPORT_CONCURRENCY + 40
