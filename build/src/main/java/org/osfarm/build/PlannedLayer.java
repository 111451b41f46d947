package org.osfarm.build;

import java.util.List;
import java.util.Map;
import org.osfarm.core.Digest;

/**
 * One layer of a plan.
 *
 * @param kind which layer
 * @param key the cache key: SHA-256 of the canonical inputs (which include the parent's key)
 * @param inputs the canonical inputs the key is computed from (secrets replaced by their digest)
 * @param packages the packages this layer installs on top of its parent
 * @param cached the snapshot under {@code cache/layers/<key>}, or null on a miss
 * @param explanation on a miss (when asked), which inputs differ from the nearest cached layer
 */
public record PlannedLayer(
    LayerKind kind,
    Digest key,
    Map<String, Object> inputs,
    List<String> packages,
    Digest cached,
    String explanation) {

  /** The ref naming this layer's snapshot. */
  public String ref() {
    return ImageBuilder.LAYER_REFS + key.hex();
  }
}
