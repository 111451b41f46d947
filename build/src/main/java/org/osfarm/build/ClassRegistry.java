package org.osfarm.build;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * The known distro classes: the built-in ones (resources {@code org/osfarm/build/classes/*.yaml},
 * listed in {@code index.txt}) and any {@code *.yaml} in extra directories, which override
 * built-ins of the same name.
 */
public final class ClassRegistry {
  private final Map<String, DistroClass> classes;

  private ClassRegistry(Map<String, DistroClass> classes) {
    this.classes = classes;
  }

  /** The built-in classes plus those in {@code dirs} (missing directories are ignored). */
  public static ClassRegistry load(List<Path> dirs) {
    Map<String, DistroClass> m = new TreeMap<>();
    try (InputStream idx = resource("classes/index.txt")) {
      for (String line : new String(idx.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
        String n = line.strip();
        if (n.isEmpty() || n.startsWith("#")) {
          continue;
        }
        try (InputStream in = resource("classes/" + n)) {
          DistroClass c = parse(new String(in.readAllBytes(), StandardCharsets.UTF_8), n);
          m.put(c.name(), c);
        }
      }
      for (Path d : dirs) {
        if (!Files.isDirectory(d)) {
          continue;
        }
        try (Stream<Path> s = Files.list(d)) {
          for (Path f : s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
            DistroClass c = parse(Files.readString(f), f.toString());
            m.put(c.name(), c);
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new ClassRegistry(m);
  }

  /** Only the built-in classes. */
  public static ClassRegistry builtIn() {
    return load(List.of());
  }

  static InputStream resource(String name) throws IOException {
    InputStream in = ClassRegistry.class.getResourceAsStream(name);
    if (in == null) {
      throw new IOException("missing resource " + name);
    }
    return in;
  }

  /** All classes, sorted by name. */
  public Collection<DistroClass> all() {
    return classes.values();
  }

  /** The class named {@code name}, or a {@link SpecException} listing the known ones. */
  public DistroClass get(String name) {
    if (name == null || name.isBlank()) {
      throw new SpecException(
          "the spec names no class; choose one of: " + String.join(", ", classes.keySet()));
    }
    DistroClass c = classes.get(name);
    if (c == null) {
      throw new SpecException(
          "unknown class '" + name + "'; known classes: " + String.join(", ", classes.keySet()));
    }
    return c;
  }

  static DistroClass parse(String yaml, String origin) throws IOException {
    JsonNode n = new YAMLMapper().readTree(yaml);
    try {
      Map<String, List<String>> groups = new LinkedHashMap<>();
      n.get("groups").fields().forEachRemaining(e -> groups.put(e.getKey(), list(e.getValue())));
      Map<String, String> kernels = new LinkedHashMap<>();
      JsonNode k = n.get("kernels");
      if (k != null) {
        k.fields().forEachRemaining(e -> kernels.put(e.getKey(), e.getValue().asText()));
      }
      return new DistroClass(
          n.get("name").asText(),
          n.get("family").asText(),
          n.path("description").asText(""),
          n.get("suite").asText(),
          n.get("mirror").asText(),
          list(n.get("components")),
          n.path("keyring").asText(null),
          list(n.get("architectures")),
          n.path("variant").asText("minbase"),
          Duration.parse(n.path("ttl").asText("PT24H")),
          list(n.get("defaultGroups")),
          kernels,
          groups);
    } catch (RuntimeException e) {
      throw new IOException("bad class file " + origin + ": " + e, e);
    }
  }

  private static List<String> list(JsonNode n) {
    List<String> out = new ArrayList<>();
    if (n != null) {
      n.forEach(x -> out.add(x.asText()));
    }
    return out;
  }
}
