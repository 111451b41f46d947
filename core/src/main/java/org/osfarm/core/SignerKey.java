package org.osfarm.core;

import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PublicKey;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;

/**
 * The public half of an Ed25519 signing key with a name for people: what {@code osfarm key show}
 * prints and what a trusted-keys file lists, one per line as {@code ed25519 BASE64 name} (BASE64 =
 * the raw 32-byte public key, as in RFC 8032). Its key id is the first 8 bytes of the SHA-256 of
 * the raw key. Immutable and thread-safe.
 */
public final class SignerKey {
  static final int RAW_LENGTH = 32;
  // X.509 SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410): the raw key follows.
  private static final byte[] X509_PREFIX = HexFormat.of().parseHex("302a300506032b6570032100");

  private final byte[] raw;
  private final String name;
  private final byte[] keyId;
  private final PublicKey jdkKey;

  private SignerKey(byte[] raw, String name) {
    if (raw.length != RAW_LENGTH) {
      throw new IllegalArgumentException("an Ed25519 public key has 32 bytes, not " + raw.length);
    }
    this.raw = raw.clone();
    this.name = name == null ? "" : name.strip();
    this.keyId = Arrays.copyOf(Digest.of(raw).toBytes(), SnapshotSignature.KEY_ID_LENGTH);
    try {
      byte[] x509 = Arrays.copyOf(X509_PREFIX, X509_PREFIX.length + RAW_LENGTH);
      System.arraycopy(raw, 0, x509, X509_PREFIX.length, RAW_LENGTH);
      this.jdkKey = KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(x509));
    } catch (GeneralSecurityException e) {
      throw new IllegalArgumentException("not an Ed25519 public key: " + e.getMessage(), e);
    }
  }

  /** A key from its raw 32 bytes. */
  public static SignerKey of(byte[] raw, String name) {
    return new SignerKey(raw, name);
  }

  static SignerKey of(PublicKey key, String name) {
    byte[] enc = key.getEncoded();
    if (!"Ed25519".equalsIgnoreCase(key.getAlgorithm()) && !"EdDSA".equals(key.getAlgorithm())
        || enc.length != X509_PREFIX.length + RAW_LENGTH
        || !Arrays.equals(enc, 0, X509_PREFIX.length, X509_PREFIX, 0, X509_PREFIX.length)) {
      throw new IllegalArgumentException("not an Ed25519 public key");
    }
    return new SignerKey(Arrays.copyOfRange(enc, X509_PREFIX.length, enc.length), name);
  }

  /**
   * Parses {@code ed25519 BASE64 [name]}.
   *
   * @throws IllegalArgumentException with a message saying what is wrong
   */
  public static SignerKey parse(String line) {
    String[] p = line.strip().split("\\s+", 3);
    if (p.length < 2 || !p[0].equals("ed25519")) {
      throw new IllegalArgumentException(
          "not a public key line: expected 'ed25519 BASE64 name', got '" + abbreviate(line) + "'");
    }
    byte[] raw;
    try {
      raw = Base64.getDecoder().decode(p[1]);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("public key '" + abbreviate(p[1]) + "' is not base64");
    }
    if (raw.length != RAW_LENGTH) {
      throw new IllegalArgumentException(
          "public key has " + raw.length + " bytes; an Ed25519 key has 32");
    }
    return new SignerKey(raw, p.length > 2 ? p[2] : "");
  }

  private static String abbreviate(String s) {
    return s.length() > 60 ? s.substring(0, 60) + "..." : s;
  }

  /** The line form: {@code ed25519 BASE64 name}. */
  public String line() {
    return ("ed25519 " + Base64.getEncoder().encodeToString(raw) + " " + name).strip();
  }

  public String name() {
    return name;
  }

  /** The key id, 16 hex digits. */
  public String keyId() {
    return HexFormat.of().formatHex(keyId);
  }

  byte[] keyIdBytes() {
    return keyId;
  }

  /** The name and key id, for messages: {@code name (key 0123456789abcdef)}. */
  public String describe() {
    return (name.isEmpty() ? "" : name + " ") + "(key " + keyId() + ")";
  }

  /** This key under another name. */
  public SignerKey withName(String newName) {
    return new SignerKey(raw, newName);
  }

  /** Whether {@code signature} is this key's Ed25519 signature of {@code data}. */
  public boolean verifies(byte[] data, byte[] signature) {
    try {
      java.security.Signature v = java.security.Signature.getInstance("Ed25519");
      v.initVerify(jdkKey);
      v.update(data);
      return v.verify(signature);
    } catch (java.security.SignatureException e) {
      return false; // malformed signature bytes
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JDK cannot verify Ed25519", e);
    }
  }

  /** Same raw key (names may differ). */
  public boolean sameKey(SignerKey o) {
    return Arrays.equals(raw, o.raw);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SignerKey k && Arrays.equals(raw, k.raw) && name.equals(k.name);
  }

  @Override
  public int hashCode() {
    return Arrays.hashCode(raw) * 31 + name.hashCode();
  }

  @Override
  public String toString() {
    return line();
  }
}
