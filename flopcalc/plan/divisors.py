"""The divisors of a whole number, from its prime factors: the search splits GPUs and batches only into
divisors, and a million GPUs have 49 of them, so it never walks 1..n (Miller-Rabin and Pollard's rho)."""

from __future__ import annotations

import math
import random

# a whole number of GPUs or examples a float still counts exactly (2^53): beyond it the value typed is not the value used
LARGEST_COUNT = 2**53
_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)


def _is_prime(n: int) -> bool:
    """Miller-Rabin with the first twelve primes as bases: exact for every n below 3.3e24."""
    if n < 2:
        return False
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for base in _SMALL_PRIMES:
        x = pow(base, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _a_factor(n: int, rng: random.Random) -> int:
    """A non-trivial factor of the odd composite `n` (Pollard's rho with Floyd's cycle finding)."""
    while True:
        c = rng.randrange(1, n)
        x = y = rng.randrange(2, n)
        factor = 1
        while factor == 1:
            x = (x * x + c) % n
            y = (y * y + c) % n
            y = (y * y + c) % n
            factor = math.gcd(abs(x - y), n)
        if factor != n:
            return factor


def prime_factors(n: int) -> dict[int, int]:
    """{prime: exponent} of n >= 1."""
    factors: dict[int, int] = {}
    for p in _SMALL_PRIMES:
        while n % p == 0:
            factors[p] = factors.get(p, 0) + 1
            n //= p
    pending, rng = [n] if n > 1 else [], random.Random(n)
    while pending:
        m = pending.pop()
        if _is_prime(m):
            factors[m] = factors.get(m, 0) + 1
        else:
            d = _a_factor(m, rng)
            pending.extend((d, m // d))
    return dict(sorted(factors.items()))


def divisors(n: int) -> list[int]:
    """Every divisor of n >= 1, ascending."""
    found = [1]
    for prime, exponent in prime_factors(n).items():
        found = [d * prime**k for d in found for k in range(exponent + 1)]
    return sorted(found)
