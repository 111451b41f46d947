package org.osfarm.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The public keys whose signatures are trusted: a text file of {@code ed25519 BASE64 name} lines
 * (blank lines and {@code #} comments allowed), as {@code REPO/keys/trusted} or a file given to
 * {@code --trust}. Immutable and thread-safe.
 */
public final class TrustedKeys {
  private final List<SignerKey> keys;

  private TrustedKeys(List<SignerKey> keys) {
    this.keys = List.copyOf(keys);
  }

  public static TrustedKeys of(List<SignerKey> keys) {
    return new TrustedKeys(keys);
  }

  public static TrustedKeys none() {
    return new TrustedKeys(List.of());
  }

  /**
   * Reads a trusted-keys file; a missing file is an empty set.
   *
   * @throws RepositoryException naming the file and line of a malformed key, or if it is unreadable
   */
  public static TrustedKeys load(Path file) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (NoSuchFileException e) {
      return none();
    } catch (IOException e) {
      throw new RepositoryException("cannot read trusted keys " + file + ": " + e.getMessage(), e);
    }
    return parse(lines, file.toString());
  }

  /** Parses trusted-key lines; {@code where} names their origin in error messages. */
  public static TrustedKeys parse(List<String> lines, String where) {
    List<SignerKey> keys = new ArrayList<>();
    for (int i = 0; i < lines.size(); i++) {
      String l = lines.get(i).strip();
      if (l.isEmpty() || l.startsWith("#")) {
        continue;
      }
      try {
        keys.add(SignerKey.parse(l));
      } catch (IllegalArgumentException e) {
        throw new RepositoryException(where + ":" + (i + 1) + ": " + e.getMessage());
      }
    }
    return new TrustedKeys(keys);
  }

  /** The trusted key with this key id. */
  public Optional<SignerKey> find(byte[] keyId) {
    for (SignerKey k : keys) {
      if (Arrays.equals(k.keyIdBytes(), keyId)) {
        return Optional.of(k);
      }
    }
    return Optional.empty();
  }

  public Optional<SignerKey> find(SnapshotSignature sig) {
    return find(sig.keyIdBytes());
  }

  /** Whether the same raw key is listed (under any name). */
  public boolean contains(SignerKey key) {
    return keys.stream().anyMatch(key::sameKey);
  }

  public List<SignerKey> keys() {
    return keys;
  }

  public boolean isEmpty() {
    return keys.isEmpty();
  }
}
