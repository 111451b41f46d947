package org.osfarm.server;

import java.time.Instant;
import java.util.List;

/**
 * A build request as the queue records it.
 *
 * @param id short random id, used in URLs
 * @param checksum SHA-256 of the normalized spec and the output format: identical requests share it
 * @param name the image name (the spec's name); the image is published as {@code images/NAME}
 * @param spec the spec as JSON
 * @param format output format label
 * @param state queued, running, done or failed
 * @param stages the steps so far, oldest first
 * @param error why it failed (null otherwise)
 * @param snapshot the image's snapshot id when done
 * @param outputSize bytes of the output file when done
 * @param outputDigest SHA-256 (hex) of the output file when done
 */
public record Job(
    String id,
    String checksum,
    String name,
    String spec,
    String format,
    State state,
    List<Stage> stages,
    String error,
    String snapshot,
    String output,
    long outputSize,
    String outputDigest,
    int layersBuilt,
    int layersReused,
    String requester,
    Instant created,
    Instant started,
    Instant finished) {

  /** Where a job is. */
  public enum State {
    QUEUED,
    RUNNING,
    DONE,
    FAILED;

    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }

    public boolean finished() {
      return this == DONE || this == FAILED;
    }
  }

  /** One step of a build ("layer base: building"), with when it began. */
  public record Stage(Instant time, String message) {}

  public String stateLabel() {
    return state.label();
  }

  /** The last step, or the state if none. */
  public String currentStage() {
    return stages.isEmpty() ? state.label() : stages.getLast().message();
  }

  /** The output file's name for downloads. */
  public String fileName() {
    return name + "." + (format.equals("oci") ? "oci.tar" : format);
  }

  public Double seconds() {
    if (started == null) {
      return null;
    }
    Instant end = finished == null ? Instant.now() : finished;
    return (end.toEpochMilli() - started.toEpochMilli()) / 1000.0;
  }
}
