package org.osfarm.build;

import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * A distro class: everything the builder needs to know about a distribution release. Classes are
 * data ({@code classes/*.yaml} in this module's resources, plus any directory given to {@link
 * ClassRegistry}), never code: a new suite or mirror is a configuration entry.
 *
 * @param name e.g. {@code debian-bookworm}
 * @param family {@code debian} or {@code ubuntu} (the backend is chosen by family)
 * @param description one line for {@code osfarm classes}
 * @param suite the archive suite or codename
 * @param mirror the archive URL
 * @param components archive components
 * @param keyring path of the archive keyring, or {@code resource:NAME} for one shipped with osfarm
 * @param architectures supported architectures; the first is the default
 * @param variant mmdebstrap variant of the core layer (e.g. {@code minbase})
 * @param ttl how long a mirror state (and so the layers keyed by it) is trusted before rechecking
 * @param defaultGroups groups of a spec that names none
 * @param kernels kernel package per architecture
 * @param groups package groups by name; {@code core} and {@code base} are layers
 */
public record DistroClass(
    String name,
    String family,
    String description,
    String suite,
    String mirror,
    List<String> components,
    String keyring,
    List<String> architectures,
    String variant,
    Duration ttl,
    List<String> defaultGroups,
    Map<String, String> kernels,
    Map<String, List<String>> groups) {

  public DistroClass {
    components = List.copyOf(components);
    architectures = List.copyOf(architectures);
    defaultGroups = List.copyOf(defaultGroups);
    kernels = Map.copyOf(kernels);
    groups = Map.copyOf(groups);
  }

  /** The packages of a group, or throws naming the known groups. */
  public List<String> group(String g) {
    List<String> p = groups.get(g);
    if (p == null) {
      throw new SpecException(
          "unknown group '"
              + g
              + "' in class "
              + name
              + " (known: "
              + String.join(", ", new java.util.TreeSet<>(groups.keySet()))
              + ")");
    }
    return p;
  }
}
