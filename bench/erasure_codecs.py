"""`python -m bench.erasure_codecs [BACKEND|zfec ...]`: encode/decode GiB/s of 4 MiB chunks at
2+1, 4+2 and 8+3 on this thread (docs/erasure-coding.md has the numbers behind the codec choice).

Times are the coding thread's CPU time, so a loaded machine distorts them less; run it pinned to
one core (`taskset -c 1`). zfec is only measured when installed (it is not a dependency).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

CHUNK = 4 * 1024 * 1024
SCHEMES = [(2, 1), (4, 2), (8, 3)]
DATA = os.urandom(CHUNK)


def rate(fn, *, rounds: int = 5, ops: int = 8) -> float:
    runs = []
    for _ in range(rounds):
        start = time.thread_time()
        for _ in range(ops):
            fn()
        runs.append(CHUNK * ops / (time.thread_time() - start) / 2**30)
    return statistics.median(runs)


def pyeclib_rates(backend: str, k: int, m: int) -> tuple[float, float, float]:
    from pyeclib.ec_iface import ECDriver

    driver = ECDriver(k=k, m=m, ec_type=backend)
    fragments = driver.encode(DATA)
    degraded = fragments[m:]  # the first m data fragments lost
    assert driver.decode(degraded) == DATA
    return (
        rate(lambda: driver.encode(DATA)),
        rate(lambda: driver.decode(degraded)),
        rate(lambda: driver.decode(fragments[:k])),
    )


def zfec_rates(k: int, m: int) -> tuple[float, float, float]:
    import zfec

    size = -(-CHUNK // k)
    padded = DATA + bytes(size * k - CHUNK)
    encoder, decoder = zfec.Encoder(k, k + m), zfec.Decoder(k, k + m)

    def encode() -> list[bytes]:
        return encoder.encode([padded[i * size : (i + 1) * size] for i in range(k)])

    shares = encode()
    numbers = list(range(m, k + m))
    kept = [shares[i] for i in numbers]
    assert b"".join(decoder.decode(kept, numbers))[:CHUNK] == DATA
    return (
        rate(encode),
        rate(lambda: b"".join(decoder.decode(kept, numbers))),
        rate(lambda: b"".join(shares[:k])),
    )


def main(names: list[str]) -> None:
    print("| codec | k+m | encode GiB/s | decode, m lost GiB/s | decode, all data GiB/s |")
    print("| --- | --- | --- | --- | --- |")
    for name in names or ["isa_l_rs_cauchy", "isa_l_rs_vand", "liberasurecode_rs_vand", "zfec"]:
        for k, m in SCHEMES:
            try:
                rates = zfec_rates(k, m) if name == "zfec" else pyeclib_rates(name, k, m)
            except ImportError:
                print(f"| {name} | not installed | | | |")
                break
            print(
                f"| {name} | {k}+{m} | " + " | ".join(f"{r:.2f}" for r in rates) + " |", flush=True
            )


if __name__ == "__main__":
    main(sys.argv[1:])
