"""A psycopg 3 session whose transcript must be the same through pgcache as
against the server. Usage: psycopg_check.py CONNINFO

Prints one line per observation; nothing that differs between two runs
against the same data (no pids, no times).
"""
import sys
import time

import psycopg
from psycopg import errors

conninfo = sys.argv[1]


def show(*parts):
    print(" | ".join(repr(p) for p in parts), flush=True)


with psycopg.connect(conninfo, autocommit=True) as conn:
    conn.execute("TRUNCATE items")
    conn.execute(
        "INSERT INTO items (id, name, price, tags, doc, raw) VALUES "
        "(1, 'apple', 1.50, ARRAY['red', 'fruit'], '{\"a\": 1}', '\\x0102'), "
        "(2, 'pear', 2.25, ARRAY['green'], '{\"b\": [1, 2]}', NULL), "
        "(3, 'plum', 0.99, '{}', 'null', '\\x')"
    )

    # The same parameterized read again and again: past psycopg's
    # prepare_threshold (5) it becomes a named server-side statement.
    for round_ in range(8):
        for item in (1, 2, 3):
            row = conn.execute(
                "SELECT id, name, price, tags, doc, raw FROM items WHERE id = %s", (item,)
            ).fetchone()
            if round_ in (0, 7):
                show("read", round_, row)

    # Binary results.
    with conn.cursor(binary=True) as cur:
        for _ in range(3):
            cur.execute("SELECT id, price, tags, raw FROM items WHERE id = %s", (1,))
        show("binary", cur.fetchone())

    # A write through the proxy is seen by the next read of the same query
    # (cached above, and prepared by now), in text and in binary.
    conn.execute("UPDATE items SET price = price + 1 WHERE id = %s", (1,))
    show(
        "after update",
        conn.execute(
            "SELECT id, name, price, tags, doc, raw FROM items WHERE id = %s", (1,)
        ).fetchone(),
    )
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT id, price, tags, raw FROM items WHERE id = %s", (1,))
        show("after update, binary", cur.fetchone())

    # Errors keep their SQLSTATE and message.
    try:
        conn.execute("SELECT 1 / 0")
    except errors.DivisionByZero as e:
        show("error", e.sqlstate, str(e).strip())
    try:
        conn.execute("SELECT nope FROM items")
    except errors.UndefinedColumn as e:
        show("error", e.sqlstate, e.diag.message_primary)
    try:
        conn.execute("INSERT INTO items (id, name, price) VALUES (1, 'dup', 0)")
    except errors.UniqueViolation as e:
        show("error", e.sqlstate, e.diag.constraint_name)

    # A transaction rolled back leaves nothing; one committed is seen.
    try:
        with conn.transaction():
            conn.execute("INSERT INTO items (id, name, price) VALUES (10, 'gone', 1)")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with conn.transaction():
        conn.execute("INSERT INTO items (id, name, price) VALUES (11, 'kept', 2)")
    show("count", conn.execute("SELECT count(*) FROM items").fetchone())

    # executemany (pipelined).
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO items (id, name, price) VALUES (%s, %s, %s)",
            [(20, "a", 1), (21, "b", 2), (22, "c", 3)],
        )
    show("many", conn.execute("SELECT sum(price) FROM items WHERE id >= 20").fetchone())

    # COPY both ways.
    with conn.cursor() as cur:
        with cur.copy("COPY items (id, name, price) FROM STDIN") as copy:
            for i in range(30, 35):
                copy.write_row((i, f"copied{i}", i))
        show("copied in", conn.execute("SELECT count(*) FROM items WHERE id >= 30").fetchone())
        with cur.copy("COPY (SELECT id, name FROM items WHERE id >= 30 ORDER BY id) TO STDOUT") as copy:
            show("copied out", [row for row in copy.rows()])

    # A server-side cursor, fetched in pieces inside a transaction.
    with conn.transaction():
        with conn.cursor(name="walk") as cur:
            cur.itersize = 2
            cur.execute("SELECT id FROM items ORDER BY id")
            show("cursor", [r[0] for r in cur])

    # LISTEN/NOTIFY between two connections: the listener's next query
    # brings the notification in.
    with psycopg.connect(conninfo, autocommit=True) as listener:
        got = []
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN news")
        conn.execute("NOTIFY news, 'hello'")
        for _ in range(100):
            listener.execute("SELECT 1")
            if got:
                break
            time.sleep(0.1)
        assert got, "no notification within 10 s"
        show("notify", got)

    # Session state: a SET is followed.
    conn.execute("SET TIME ZONE 'UTC'")
    show("tz", conn.execute("SELECT '2024-01-01 12:00+02'::timestamptz::text").fetchone())
    conn.execute("SET TIME ZONE 'Asia/Tokyo'")
    show("tz", conn.execute("SELECT '2024-01-01 12:00+02'::timestamptz::text").fetchone())
print("done")
