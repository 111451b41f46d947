package org.osfarm.server;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;

/**
 * API tokens for requests that change anything. A token is {@code osf_} and 32 random bytes
 * (base64url); only its SHA-256 is stored, so the database never holds a usable secret.
 * Thread-safe.
 */
public final class TokenStore implements AutoCloseable {
  private static final SecureRandom RANDOM = new SecureRandom();
  private final ServerDatabase db;
  private final boolean owned;

  TokenStore(ServerDatabase db) {
    this.db = db;
    this.owned = false;
  }

  private TokenStore(ServerDatabase db, boolean owned) {
    this.db = db;
    this.owned = owned;
  }

  /** Opens the tokens of the service database {@code file} (created if missing). */
  public static TokenStore open(Path file) {
    return new TokenStore(ServerDatabase.open(file), true);
  }

  /** A token's name and creation time (never the token). */
  public record TokenInfo(String name, Instant created) {}

  /**
   * Creates a token named {@code name} and returns it; it is shown only this once.
   *
   * @throws IllegalArgumentException if the name is taken or not a plain word
   */
  public String create(String name) {
    if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")) {
      throw new IllegalArgumentException(
          "token name '" + name + "': use letters, digits, '.', '_', '@', '-' (at most 64)");
    }
    byte[] raw = new byte[32];
    RANDOM.nextBytes(raw);
    String token = "osf_" + Base64.getUrlEncoder().withoutPadding().encodeToString(raw);
    synchronized (db) {
      try (PreparedStatement p =
          db.connection()
              .prepareStatement("INSERT INTO tokens(name, hash, created) VALUES(?,?,?)")) {
        p.setString(1, name);
        p.setString(2, hash(token));
        p.setLong(3, System.currentTimeMillis());
        p.executeUpdate();
      } catch (SQLException e) {
        if (e.getMessage() != null && e.getMessage().contains("UNIQUE")) {
          throw new IllegalArgumentException(
              "a token named '" + name + "' exists; revoke it first or choose another name");
        }
        throw new IllegalStateException("cannot store the token: " + e.getMessage(), e);
      }
    }
    return token;
  }

  /** The name of the token, if it is valid. */
  public Optional<String> verify(String token) {
    if (token == null || !token.startsWith("osf_") || token.length() > 100) {
      return Optional.empty();
    }
    synchronized (db) {
      try (PreparedStatement p =
          db.connection().prepareStatement("SELECT name FROM tokens WHERE hash = ?")) {
        p.setString(1, hash(token));
        try (ResultSet r = p.executeQuery()) {
          return r.next() ? Optional.of(r.getString(1)) : Optional.empty();
        }
      } catch (SQLException e) {
        throw new IllegalStateException("cannot read tokens: " + e.getMessage(), e);
      }
    }
  }

  /** Every token's name and creation time. */
  public List<TokenInfo> list() {
    synchronized (db) {
      try (PreparedStatement p =
              db.connection().prepareStatement("SELECT name, created FROM tokens ORDER BY name");
          ResultSet r = p.executeQuery()) {
        List<TokenInfo> out = new ArrayList<>();
        while (r.next()) {
          out.add(new TokenInfo(r.getString(1), Instant.ofEpochMilli(r.getLong(2))));
        }
        return out;
      } catch (SQLException e) {
        throw new IllegalStateException("cannot read tokens: " + e.getMessage(), e);
      }
    }
  }

  /** Revokes the token {@code name}; false if there was none. */
  public boolean revoke(String name) {
    synchronized (db) {
      try (PreparedStatement p =
          db.connection().prepareStatement("DELETE FROM tokens WHERE name = ?")) {
        p.setString(1, name);
        return p.executeUpdate() > 0;
      } catch (SQLException e) {
        throw new IllegalStateException("cannot revoke the token: " + e.getMessage(), e);
      }
    }
  }

  static String hash(String token) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      return HexFormat.of().formatHex(md.digest(token.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    if (owned) {
      db.close();
    }
  }
}
