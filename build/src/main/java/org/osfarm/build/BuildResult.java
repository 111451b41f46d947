package org.osfarm.build;

import java.util.List;
import org.osfarm.core.Digest;

/**
 * What a build did.
 *
 * @param snapshot the image's snapshot
 * @param plan the plan, as it was before building
 * @param layersBuilt layers built by this call
 * @param layersReused layers taken from the cache
 * @param outputsFromCache outputs delivered from the whole-request cache
 * @param seconds wall time
 */
public record BuildResult(
    Digest snapshot,
    BuildPlan plan,
    int layersBuilt,
    int layersReused,
    int outputsFromCache,
    double seconds,
    List<OutputRequest> outputs) {}
