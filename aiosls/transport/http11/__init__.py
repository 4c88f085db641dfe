"""``Http11Transport``: a lean keep-alive HTTP/1.1 client on asyncio protocols (opt-in, provisional).

It exists for CPU-bound fan-outs against loopback or in-VPC endpoints: a GetCheckPoint is a
request line, eight headers and a small JSON body, and an ``aiohttp.ClientSession`` request
spends several times the CPU around those bytes that this transport does
(``benchmarks/README.md``). Response framing is httptools' (llhttp, the parser family of
aiohttp's own C parser), so it needs the ``speedups`` extra: ``pip install 'aiosls[speedups]'``.
It works on asyncio's event loop and on uvloop.

What it lacks, and :class:`~aiosls.transport.aiohttp.AiohttpTransport` has: HTTP(S) proxies,
aiohttp trace configs (and so the OpenTelemetry aiohttp instrumentation), happy eyeballs and a
DNS cache. Use it with ``CheckpointService(..., transport=Http11Transport())``.
"""

from __future__ import annotations

from ._transport import Http11Transport

__all__ = ["Http11Transport"]
