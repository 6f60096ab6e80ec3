"""A psycopg2 (libpq) session whose transcript must be the same through
pgcache as against the server. psycopg2 interpolates parameters on the
client and sends simple Query messages. Usage: psycopg2_check.py CONNINFO
"""
import select
import sys
import time

import psycopg2
import psycopg2.extensions
from psycopg2 import errors

conninfo = sys.argv[1]


def show(*parts):
    print(" | ".join(repr(p) for p in parts), flush=True)


conn = psycopg2.connect(conninfo)
conn.autocommit = True
cur = conn.cursor()
cur.execute("TRUNCATE items")
cur.execute(
    "INSERT INTO items (id, name, price, tags, raw) VALUES "
    "(1, 'apple', 1.50, ARRAY['red'], '\\x0102'), (2, 'pear', 2.25, '{}', NULL), "
    "(3, 'plum', 0.99, NULL, '\\x')"
)

for round_ in range(5):
    for item in (1, 2, 3):
        cur.execute("SELECT id, name, price, tags, raw FROM items WHERE id = %s", (item,))
        row = cur.fetchone()
        if round_ in (0, 4):
            show("read", round_, row[:4], bytes(row[4]) if row[4] is not None else None)

# A write is seen by the next read of the same (cached) query.
cur.execute("UPDATE items SET price = price + 1 WHERE id = %s", (1,))
cur.execute("SELECT id, name, price, tags, raw FROM items WHERE id = %s", (1,))
show("after update", cur.fetchone()[:3])

try:
    cur.execute("SELECT 1 / 0")
except errors.DivisionByZero as e:
    show("error", e.pgcode, e.pgerror.strip())

# Transactions through libpq's own BEGIN.
conn.autocommit = False
cur.execute("INSERT INTO items (id, name, price) VALUES (10, 'gone', 1)")
conn.rollback()
cur.execute("INSERT INTO items (id, name, price) VALUES (11, 'kept', 2)")
conn.commit()
conn.autocommit = True
cur.execute("SELECT count(*) FROM items")
show("count", cur.fetchone())

# COPY both ways.
import io

cur.copy_expert("COPY items (id, name, price) FROM STDIN", io.StringIO("30\tc30\t3\n31\tc31\t3.5\n"))
out = io.StringIO()
cur.copy_expert("COPY (SELECT id, name, price FROM items WHERE id >= 30 ORDER BY id) TO STDOUT", out)
show("copy", out.getvalue())

# A named (server-side) cursor.
conn.autocommit = False
named = conn.cursor("walk")
named.itersize = 2
named.execute("SELECT id FROM items ORDER BY id")
show("cursor", [r[0] for r in named])
named.close()
conn.commit()
conn.autocommit = True

# LISTEN/NOTIFY.
listener = psycopg2.connect(conninfo)
listener.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
lcur = listener.cursor()
lcur.execute("LISTEN news")
cur.execute("NOTIFY news, 'hello'")
got = []
deadline = time.time() + 10
while not got and time.time() < deadline:
    if select.select([listener], [], [], 0.5)[0]:
        listener.poll()
        got = [(n.channel, n.payload) for n in listener.notifies]
assert got, "no notification within 10 s"
show("notify", got)
listener.close()
conn.close()
print("done")
