// A pgJDBC session whose transcript must be the same through pgcache as
// against the server. Usage: java JdbcCheck JDBC_URL USER PASSWORD
// prepareThreshold=1 in the URL makes every PreparedStatement a named server
// statement from its first execution, with binary transfer where pgJDBC uses it.

import java.sql.*;
import java.util.*;

public class JdbcCheck {
    static void show(Object... parts) {
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < parts.length; i++) {
            if (i > 0) line.append(" | ");
            line.append(String.valueOf(parts[i]));
        }
        System.out.println(line);
    }

    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        try (Connection conn = DriverManager.getConnection(args[0], props)) {
            try (Statement st = conn.createStatement()) {
                st.execute("TRUNCATE items");
                st.execute("INSERT INTO items (id, name, price, tags) VALUES "
                        + "(1, 'apple', 1.50, ARRAY['red']), (2, 'pear', 2.25, '{}'), (3, 'plum', 0.99, NULL)");
            }
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT id, name, price, tags FROM items WHERE id = ?")) {
                for (int round = 0; round < 5; round++) {
                    for (int id = 1; id <= 3; id++) {
                        ps.setInt(1, id);
                        try (ResultSet rs = ps.executeQuery()) {
                            while (rs.next()) {
                                Array tags = rs.getArray(4);
                                if (round == 0 || round == 4) {
                                    show("read", round, rs.getInt(1), rs.getString(2), rs.getBigDecimal(3),
                                            tags == null ? null : Arrays.toString((Object[]) tags.getArray()));
                                }
                            }
                        }
                    }
                }
            }
            try (PreparedStatement up = conn.prepareStatement("UPDATE items SET price = price + 1 WHERE id = ?")) {
                up.setInt(1, 3);
                show("updated", up.executeUpdate());
            }
            // The same query as above, cached by now: the update must show.
            try (PreparedStatement ps = conn.prepareStatement(
                    "SELECT id, name, price, tags FROM items WHERE id = ?")) {
                ps.setInt(1, 3);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    show("after update", rs.getBigDecimal(3));
                }
            }
            try (Statement st = conn.createStatement()) {
                st.executeQuery("SELECT 1 / 0");
            } catch (SQLException e) {
                show("error", e.getSQLState(), e.getMessage());
            }
            // A batch, then a transaction rolled back and one committed.
            try (PreparedStatement ins = conn.prepareStatement("INSERT INTO items (id, name, price) VALUES (?, ?, ?)")) {
                for (int i = 20; i < 23; i++) {
                    ins.setInt(1, i);
                    ins.setString(2, "b" + i);
                    ins.setInt(3, i);
                    ins.addBatch();
                }
                show("batch", Arrays.toString(ins.executeBatch()));
            }
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement()) {
                st.execute("INSERT INTO items (id, name, price) VALUES (30, 'gone', 1)");
                conn.rollback();
                st.execute("INSERT INTO items (id, name, price) VALUES (31, 'kept', 1)");
                conn.commit();
            }
            conn.setAutoCommit(true);
            try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*), sum(price) FROM items")) {
                rs.next();
                show("count", rs.getLong(1), rs.getBigDecimal(2));
            }
        }
        System.out.println("done");
    }
}
