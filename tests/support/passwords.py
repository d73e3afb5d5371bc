"""Password hashes for test users: argon2id like `monitor web hash-password`, with the least work
argon2 allows, so that each test's login costs a millisecond rather than a fifth of a second.
Verification reads the parameters from the hash, so the desk checks these with the same code."""

from __future__ import annotations

from argon2 import PasswordHasher


def quick_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)
