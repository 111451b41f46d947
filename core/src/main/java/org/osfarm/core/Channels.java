package org.osfarm.core;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Release channels: refs {@code channels/NAME} (by default {@code development}, {@code testing},
 * {@code production}) that move only by promotion, a compare-and-swap whose reflog entry says where
 * the snapshot came from. In a repository that requires signatures only snapshots signed by a
 * trusted key can be promoted. Thread-safe; safe against concurrent promotions in other processes.
 */
public final class Channels {
  /** The ref prefix of channels. */
  public static final String PREFIX = "channels/";

  /** The channels every repository shows, in promotion order. */
  public static final List<String> DEFAULTS = List.of("development", "testing", "production");

  private final Repository repo;

  public Channels(Repository repo) {
    this.repo = repo;
  }

  /**
   * The ref of a channel ({@code testing} or {@code channels/testing}).
   *
   * @throws InvalidInputException if the name is not a valid ref name
   */
  public static String refName(String channel) {
    String name = channel.startsWith(PREFIX) ? channel.substring(PREFIX.length()) : channel;
    String ref = PREFIX + name;
    try {
      if (name.isEmpty()) {
        throw new IllegalArgumentException("empty");
      }
      RefDatabase.validateName(ref);
    } catch (IllegalArgumentException e) {
      throw new InvalidInputException(
          "'"
              + channel
              + "' is not a valid channel name (letters, digits, '.', '_', '-', '/' between"
              + " parts; e.g. "
              + String.join(", ", DEFAULTS)
              + ")");
    }
    return ref;
  }

  /** How a promotion ended. */
  public record Promotion(
      String channel, Digest from, Digest to, RefUpdate update, SignerKey signer) {}

  /**
   * Moves {@code channel} to the snapshot {@code target} names (ref, id or id prefix).
   *
   * @param expect what the channel must hold now ({@code "none"}: must not exist), or null for
   *     whatever it held when the promotion started
   * @throws RefConflictException if the channel holds something else; nothing changed
   * @throws SignatureException if the repository requires signatures and the snapshot is not signed
   *     by a trusted key
   */
  public Promotion promote(String target, String channel, String expect) {
    boolean isRef;
    try {
      RefDatabase.validateName(target);
      isRef = repo.refs().get(target).isPresent();
    } catch (IllegalArgumentException notAName) {
      isRef = false;
    }
    if (!isRef && !target.contains("/") && repo.refs().get(PREFIX + target).isPresent()) {
      return promoteFrom(target, channel, expect); // "promote testing --to production"
    }
    return promote(target, isRef ? target : "snapshot", channel, expect);
  }

  /** Moves {@code to} to what channel {@code from} holds. */
  public Promotion promoteFrom(String from, String to, String expect) {
    String fromRef = refName(from);
    if (fromRef.equals(refName(to))) {
      throw new InvalidInputException("cannot promote channel " + from + " onto itself");
    }
    if (repo.refs().get(fromRef).isEmpty()) {
      throw new NotFoundException("channel '" + from + "' is empty (no ref " + fromRef + ")");
    }
    return promote(fromRef, fromRef, to, expect);
  }

  private Promotion promote(String target, String source, String channel, String expect) {
    String ref = refName(channel);
    String name = ref.substring(PREFIX.length());
    // Held shared so that a gc cannot remove the snapshot between resolving and naming it.
    try (Repository.Lease lease = repo.holdSharedLock()) {
      Digest id = repo.resolve(target);
      SignerKey signer = null;
      if (repo.keys().requiresSignatures()) {
        try {
          signer = repo.verifySignature(id, repo.keys().trusted());
        } catch (SignatureException e) {
          throw new SignatureException(
              e.reason(),
              "not promoted to "
                  + name
                  + ": this repository requires signatures; "
                  + e.getMessage(),
              e);
        }
      }
      Digest current = repo.refs().get(ref).orElse(null);
      Digest expected = current;
      if (expect != null) {
        expected =
            expect.equals("none") || expect.equals("-") ? null : resolveExpected(expect, name);
      }
      String message =
          "promote: from "
              + source
              + " ("
              + id.hex()
              + ")"
              + (expected == null ? "" : ", replacing " + expected.shortHex(12));
      RefUpdate u = repo.refs().compareAndSet(ref, expected, id, message);
      if (u == RefUpdate.REJECTED_CHANGED) {
        Digest now = repo.refs().get(ref).orElse(null);
        throw new RefConflictException(
            "channel "
                + name
                + " holds "
                + (now == null ? "nothing" : now.hex())
                + (expected == null
                    ? ", expected it empty"
                    : ", not the expected " + expected.hex())
                + (expect != null
                    ? " (--expect): someone promoted meanwhile; check 'osfarm channels' and retry"
                    : ": it moved during the promotion; try again")
                + ". Nothing changed.");
      }
      return new Promotion(name, expected, id, u, signer);
    }
  }

  private Digest resolveExpected(String expect, String channel) {
    try {
      return repo.resolve(expect);
    } catch (NotFoundException e) {
      throw new NotFoundException(
          "--expect " + expect + " for channel " + channel + ": " + e.getMessage());
    }
  }

  /**
   * A channel's state.
   *
   * @param snapshot what it holds, or null if it is empty
   * @param signer who signed it, as verified against the repository's trusted keys: {@code "name
   *     (key id)"}, {@code "untrusted key ID"}, {@code "unsigned"}, {@code "BAD SIGNATURE"}, or
   *     {@code "-"} for an empty channel
   * @param moved when it last moved (from its reflog), or null
   * @param how the reflog message of that move
   */
  public record ChannelState(
      String name, Digest snapshot, String signer, Instant moved, String how) {}

  /** The default channels and every other ref under {@code channels/}, defaults first. */
  public List<ChannelState> list() {
    TreeSet<String> others = new TreeSet<>();
    for (String r : repo.refs().list().keySet()) {
      if (r.startsWith(PREFIX) && !DEFAULTS.contains(r.substring(PREFIX.length()))) {
        others.add(r.substring(PREFIX.length()));
      }
    }
    List<String> names = new ArrayList<>(DEFAULTS);
    names.addAll(others);
    TrustedKeys trusted = repo.keys().trusted();
    List<ChannelState> out = new ArrayList<>();
    for (String n : names) {
      String ref = PREFIX + n;
      Optional<Digest> id = repo.refs().get(ref);
      List<ReflogEntry> log = repo.refs().log(ref);
      ReflogEntry last = log.isEmpty() ? null : log.get(log.size() - 1);
      out.add(
          new ChannelState(
              n,
              id.orElse(null),
              id.map(d -> signer(d, trusted)).orElse("-"),
              last == null ? null : last.time(),
              last == null ? "" : last.message()));
    }
    return out;
  }

  private String signer(Digest id, TrustedKeys trusted) {
    try {
      return repo.verifySignature(id, trusted).describe();
    } catch (SignatureException e) {
      return switch (e.reason()) {
        case UNSIGNED -> "unsigned";
        case UNKNOWN_KEY ->
            "untrusted key "
                + String.join(
                    ",",
                    repo.readSnapshot(id).signatures().stream()
                        .map(SnapshotSignature::keyId)
                        .toList());
        case BAD_SIGNATURE, MALFORMED -> "BAD SIGNATURE";
      };
    }
  }
}
