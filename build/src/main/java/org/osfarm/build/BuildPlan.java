package org.osfarm.build;

import java.util.List;

/**
 * The layers a spec needs, bottom first, with their keys and whether each is cached.
 *
 * @param spec the normalized spec
 * @param distro its class
 * @param arch the architecture
 * @param layers bottom (core) first; the last is the image
 */
public record BuildPlan(
    ImageSpec spec, DistroClass distro, String arch, List<PlannedLayer> layers) {
  public BuildPlan {
    layers = List.copyOf(layers);
  }

  /** The top layer: the image itself. */
  public PlannedLayer top() {
    return layers.getLast();
  }

  /** Renders the plan as {@code osfarm build --plan} prints it. */
  public String render() {
    StringBuilder sb = new StringBuilder();
    sb.append("class ").append(distro.name()).append(" arch ").append(arch).append('\n');
    for (PlannedLayer l : layers) {
      sb.append(
          String.format(
              "%-9s %s %s",
              l.kind().label(), l.key().hex(), l.cached() != null ? "cached" : "miss"));
      if (!l.packages().isEmpty()) {
        sb.append("  +").append(String.join(" ", l.packages()));
      }
      sb.append('\n');
      if (l.explanation() != null) {
        sb.append("          ").append(l.explanation().replace("\n", "\n          ")).append('\n');
      }
    }
    return sb.toString();
  }
}
