"""An asyncpg session (binary protocol, named statements) whose transcript
must be the same through pgcache as against the server.
Usage: asyncpg_check.py DSN
"""
import asyncio
import sys

import asyncpg

dsn = sys.argv[1]


def show(*parts):
    print(" | ".join(repr(p) for p in parts), flush=True)


def plain(record):
    return None if record is None else tuple(record.values())


async def main():
    conn = await asyncpg.connect(dsn)
    await conn.execute("TRUNCATE items")
    await conn.executemany(
        "INSERT INTO items (id, name, price, tags) VALUES ($1, $2, $3, $4)",
        [(1, "apple", 1.5, ["red"]), (2, "pear", 2.25, []), (3, "plum", 0.99, None)],
    )

    # Repeated reads through asyncpg's statement cache (named statements).
    for round_ in range(5):
        for item in (1, 2, 3):
            row = await conn.fetchrow("SELECT id, name, price, tags FROM items WHERE id = $1", item)
            if round_ in (0, 4):
                show("read", round_, plain(row))

    # An explicit prepared statement, used several times.
    stmt = await conn.prepare("SELECT name FROM items WHERE price > $1 ORDER BY id")
    for _ in range(3):
        names = [r["name"] for r in await stmt.fetch(1.0)]
    show("prepared", names)

    # A write is seen by the next read.
    await conn.execute("UPDATE items SET price = price * 2 WHERE id = $1", 3)
    row = await conn.fetchrow("SELECT id, name, price, tags FROM items WHERE id = $1", 3)
    show("after update", plain(row))
    for _ in range(3):
        names = [r["name"] for r in await stmt.fetch(1.0)]
    show("prepared after update", names)

    # Errors.
    try:
        await conn.fetchval("SELECT 1 / 0")
    except asyncpg.DivisionByZeroError as e:
        show("error", e.sqlstate, str(e))
    try:
        await conn.execute("INSERT INTO items (id, name, price) VALUES (1, 'dup', 0)")
    except asyncpg.UniqueViolationError as e:
        show("error", e.sqlstate, e.constraint_name)

    # Transactions.
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO items (id, name, price) VALUES (10, 'gone', 1)")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    async with conn.transaction():
        await conn.execute("INSERT INTO items (id, name, price) VALUES (11, 'kept', 2)")
    show("count", await conn.fetchval("SELECT count(*) FROM items"))

    # COPY both ways (binary COPY).
    await conn.copy_records_to_table(
        "items", records=[(40, "c40", 4.0), (41, "c41", 4.1)], columns=["id", "name", "price"]
    )
    rows = await conn.fetch("SELECT id, name FROM items WHERE id >= 40 ORDER BY id")
    show("copied in", [tuple(r.values()) for r in rows])

    # LISTEN/NOTIFY.
    other = await asyncpg.connect(dsn)
    got = asyncio.get_running_loop().create_future()
    await other.add_listener("news", lambda *args: got.done() or got.set_result(args[2:]))
    await conn.execute("NOTIFY news, 'hello'")
    show("notify", await asyncio.wait_for(got, 10))
    await other.close()

    # A cursor inside a transaction.
    async with conn.transaction():
        ids = [r["id"] async for r in conn.cursor("SELECT id FROM items ORDER BY id", prefetch=2)]
    show("cursor", ids)
    await conn.close()
    print("done")


asyncio.run(main())
