"""flopcalc.plan.divisors: from prime factors, the same divisors as walking 1..n, for numbers no walk could reach."""

import math

import pytest

from flopcalc.plan.divisors import divisors, prime_factors


def test_the_divisors_of_every_number_below_3000_are_those_a_walk_finds():
    for n in range(1, 3000):
        assert divisors(n) == [d for d in range(1, n + 1) if n % d == 0], n


@pytest.mark.parametrize(
    "n, factors",
    [
        (10**9, {2: 9, 5: 9}),
        (600_851_475_143, {71: 1, 839: 1, 1471: 1, 6857: 1}),
        (999_999_999_989, {999_999_999_989: 1}),  # the largest prime below 10^12
        (2**53 - 1, {6361: 1, 69_431: 1, 20_394_401: 1}),
        (2**53, {2: 53}),
        (1_000_000_007 * 998_244_353, {998_244_353: 1, 1_000_000_007: 1}),  # two large primes: Pollard's rho's work
    ],
)
def test_large_numbers_factor_exactly(n, factors):
    assert prime_factors(n) == factors
    found = divisors(n)
    assert len(found) == math.prod(e + 1 for e in factors.values())
    assert found[0] == 1 and found[-1] == n and all(n % d == 0 for d in found) and found == sorted(set(found))
