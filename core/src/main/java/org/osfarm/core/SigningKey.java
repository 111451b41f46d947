package org.osfarm.core;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.spec.NamedParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Base64;

/**
 * An Ed25519 private key that signs snapshots, with its public half. Stored as PKCS#8 (PEM {@code
 * PRIVATE KEY}, as {@code openssl genpkey -algorithm ed25519} writes it; DER is read too), file
 * mode 0600; the public line ({@code ed25519 BASE64 name}) sits beside it in {@code PATH.pub} and
 * gives the key its name. Only the JDK's Ed25519 is used. Thread-safe.
 */
public final class SigningKey {
  private static final String PEM_BEGIN = "-----BEGIN PRIVATE KEY-----";
  private static final String PEM_END = "-----END PRIVATE KEY-----";

  private final PrivateKey key;
  private final SignerKey publicKey;

  private SigningKey(PrivateKey key, SignerKey publicKey) {
    this.key = key;
    this.publicKey = publicKey;
  }

  /** A new random key. */
  public static SigningKey generate(String name) {
    try {
      KeyPair kp = KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      return new SigningKey(kp.getPrivate(), SignerKey.of(kp.getPublic(), name));
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("this JDK cannot make Ed25519 keys", e);
    }
  }

  /**
   * Reads a private key file (and the name from {@code PATH.pub} if there is one).
   *
   * @throws RepositoryException if the file is missing, unreadable or not an Ed25519 PKCS#8 key
   */
  public static SigningKey load(Path file) {
    byte[] b;
    try {
      b = Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new RepositoryException(
          "signing key "
              + file
              + " does not exist: run 'osfarm key generate', or fix 'signing-key' in osfarm.conf");
    } catch (AccessDeniedException e) {
      throw new RepositoryException("cannot read signing key " + file + ": permission denied");
    } catch (IOException e) {
      throw new RepositoryException("cannot read signing key " + file + ": " + e.getMessage(), e);
    }
    PrivateKey pk;
    try {
      pk = KeyFactory.getInstance("Ed25519").generatePrivate(new PKCS8EncodedKeySpec(der(b)));
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      throw new RepositoryException(
          "signing key "
              + file
              + " is not an Ed25519 private key in PKCS#8 (PEM or DER): "
              + e.getMessage());
    }
    String name = "";
    Path pub = publicFile(file);
    try {
      if (Files.isRegularFile(pub)) {
        name = SignerKey.parse(Files.readString(pub, StandardCharsets.UTF_8).strip()).name();
      }
    } catch (IOException | IllegalArgumentException e) {
      // the name is a convenience; the key itself is the private key's public half
    }
    return new SigningKey(pk, derivePublic(pk, name, file));
  }

  private static byte[] der(byte[] file) {
    String s = new String(file, StandardCharsets.US_ASCII);
    int begin = s.indexOf(PEM_BEGIN);
    if (begin < 0) {
      return file; // DER
    }
    int end = s.indexOf(PEM_END, begin);
    if (end < 0) {
      throw new IllegalArgumentException("PEM block has no END line");
    }
    return Base64.getMimeDecoder().decode(s.substring(begin + PEM_BEGIN.length(), end));
  }

  /**
   * The JDK has no API that computes an Ed25519 public key from a private one, but its key-pair
   * generator takes the 32-byte private key straight from its SecureRandom (RFC 8032 5.1.5): so
   * generating with a "random" source that returns the stored private key yields its public key. A
   * sign/verify round checks the result, so a JDK that behaves otherwise gives a clear error, never
   * a wrong public key.
   */
  private static SignerKey derivePublic(PrivateKey pk, String name, Path file) {
    try {
      byte[] seed = ((java.security.interfaces.EdECPrivateKey) pk).getBytes().orElseThrow();
      SecureRandom fixed =
          new SecureRandom() {
            @Override
            public void nextBytes(byte[] out) {
              if (out.length != seed.length) {
                throw new IllegalStateException("unexpected Ed25519 key generation");
              }
              System.arraycopy(seed, 0, out, 0, seed.length);
            }
          };
      KeyPairGenerator g = KeyPairGenerator.getInstance("Ed25519");
      g.initialize(NamedParameterSpec.ED25519, fixed);
      SignerKey pub = SignerKey.of(g.generateKeyPair().getPublic(), name);
      byte[] probe = "osfarm signing key check".getBytes(StandardCharsets.US_ASCII);
      if (!pub.verifies(probe, sign(pk, probe))) {
        throw new IllegalStateException("derived public key does not verify");
      }
      return pub;
    } catch (GeneralSecurityException | RuntimeException e) {
      throw new RepositoryException(
          "cannot compute the public key of " + file + ": " + e.getMessage(), e);
    }
  }

  public SignerKey publicKey() {
    return publicKey;
  }

  /** The Ed25519 signature of {@code data} (64 bytes). */
  public byte[] sign(byte[] data) {
    try {
      return sign(key, data);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("Ed25519 signing failed", e);
    }
  }

  private static byte[] sign(PrivateKey key, byte[] data) throws GeneralSecurityException {
    java.security.Signature s = java.security.Signature.getInstance("Ed25519");
    s.initSign(key);
    s.update(data);
    return s.sign();
  }

  /** {@code PATH.pub}: the public line of the key in {@code PATH}. */
  public static Path publicFile(Path keyFile) {
    return keyFile.resolveSibling(keyFile.getFileName() + ".pub");
  }

  /**
   * Writes this key to {@code file} (PEM, mode 0600 from creation on) and its public line to {@code
   * PATH.pub}, each through a temporary file renamed into place. Refuses to replace an existing key
   * unless {@code replace}.
   */
  public void write(Path file, boolean replace) throws IOException {
    if (!replace && Files.exists(file)) {
      throw new FileAlreadyExistsException(
          file.toString(), null, "a signing key exists already (replacing it needs --force)");
    }
    Path parent = file.toAbsolutePath().getParent();
    Files.createDirectories(parent);
    String pem =
        PEM_BEGIN
            + "\n"
            + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(key.getEncoded())
            + "\n"
            + PEM_END
            + "\n";
    Path tmp = parent.resolve("." + file.getFileName() + ".tmp");
    Files.deleteIfExists(tmp);
    Files.createFile(
        tmp, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    try {
      writeSynced(tmp, pem);
      Path pubTmp = parent.resolve("." + file.getFileName() + ".pub.tmp");
      writeSynced(pubTmp, publicKey.line() + "\n");
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      Files.move(
          pubTmp,
          publicFile(file),
          StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
      FileSync.fsync(parent);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static void writeSynced(Path f, String text) throws IOException {
    try (FileChannel ch =
        FileChannel.open(
            f,
            StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING,
            StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
      ch.force(true);
    }
  }

  @Override
  public String toString() {
    return "signing key " + publicKey.describe();
  }
}
