package org.osfarm.build;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.xml.XmlMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Reads an {@link ImageSpec} from OS Farm-style XML, YAML or JSON. All three map to the same model;
 * XML elements and attributes are interchangeable, lists may be written as repeated elements, a
 * wrapper element ({@code <packages><package>..}), a YAML/JSON list, or a space/comma separated
 * string. Unknown fields are errors, so a typo never silently builds the wrong image.
 */
public final class SpecParser {
  /** The syntaxes a spec may use. */
  public enum Syntax {
    XML,
    YAML,
    JSON
  }

  private static final Set<String> FIELDS =
      Set.of(
          "name",
          "class",
          "arch",
          "groups",
          "group",
          "packages",
          "package",
          "repositories",
          "repository",
          "rootPassword",
          "root-password",
          "rootPasswordHash",
          "root-password-hash",
          "users",
          "user",
          "hostname",
          "files",
          "file",
          "scripts",
          "script",
          "kernel",
          "services",
          "service",
          "firstBoot",
          "first-boot");

  private SpecParser() {}

  /** Parses a spec file; the syntax comes from the extension, else from the first character. */
  public static ImageSpec parse(Path file) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new SpecException("cannot read spec " + file + ": " + e.getMessage(), e);
    }
    String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
    Syntax s =
        n.endsWith(".xml")
            ? Syntax.XML
            : n.endsWith(".json")
                ? Syntax.JSON
                : n.endsWith(".yaml") || n.endsWith(".yml") ? Syntax.YAML : sniff(text);
    return parse(text, s, file.toString());
  }

  /** Parses spec text in the given syntax; {@code origin} names it in error messages. */
  public static ImageSpec parse(String text, Syntax syntax, String origin) {
    ObjectMapper m =
        switch (syntax) {
          case XML -> new XmlMapper();
          case YAML -> new YAMLMapper();
          case JSON -> new ObjectMapper();
        };
    JsonNode root;
    try {
      root = m.readTree(text);
    } catch (JacksonException e) {
      JsonLocation loc = e.getLocation();
      String where =
          loc == null ? "" : " at line " + loc.getLineNr() + " column " + loc.getColumnNr();
      throw new SpecException(
          origin + ": malformed " + syntax + where + ": " + e.getOriginalMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new SpecException(origin + ": a spec must be an object/element with fields");
    }
    return fromTree(root, origin);
  }

  static Syntax sniff(String text) {
    String t = text.stripLeading();
    if (t.startsWith("<")) {
      return Syntax.XML;
    }
    if (t.startsWith("{")) {
      return Syntax.JSON;
    }
    return Syntax.YAML;
  }

  private static ImageSpec fromTree(JsonNode root, String origin) {
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String f = it.next();
      if (!FIELDS.contains(f) && !f.isEmpty()) {
        throw new SpecException(
            origin + ": unknown field '" + f + "' (known: " + String.join(", ", sorted()) + ")");
      }
    }
    ImageSpec.Builder b = ImageSpec.builder();
    b.name(text(root, "name"));
    b.className(text(root, "class"));
    b.arch(text(root, "arch"));
    b.groupsList(strings(root, "groups", "group"));
    b.packagesList(strings(root, "packages", "package"));
    for (JsonNode r : nodes(root, "repositories", "repository")) {
      String uri = require(r, "uri", origin, "repository");
      String suite = require(r, "suite", origin, "repository");
      List<String> comps = words(text(r, "components"));
      b.repository(new ImageSpec.Repo(uri, suite, comps.isEmpty() ? null : comps, text(r, "key")));
    }
    String pw = text(root, "rootPassword");
    b.rootPassword(pw != null ? pw : text(root, "root-password"));
    String pwHash = text(root, "rootPasswordHash");
    b.rootPasswordHash(pwHash != null ? pwHash : text(root, "root-password-hash"));
    for (JsonNode u : nodes(root, "users", "user")) {
      String name = require(u, "name", origin, "user");
      if (!name.matches("[a-z_][a-z0-9_-]{0,31}")) {
        throw new SpecException(origin + ": invalid user name '" + name + "'");
      }
      b.user(
          new ImageSpec.User(
              name,
              text(u, "password"),
              text(u, "passwordHash") != null ? text(u, "passwordHash") : text(u, "password-hash"),
              stringsRaw(u, "sshKeys", "sshKey"),
              Boolean.parseBoolean(text(u, "sudo"))));
    }
    b.hostname(text(root, "hostname"));
    for (JsonNode f : nodes(root, "files", "file")) {
      String path = require(f, "path", origin, "file");
      if (!path.startsWith("/") || path.contains("/../") || path.endsWith("/..")) {
        throw new SpecException(origin + ": file path must be absolute and without '..': " + path);
      }
      String mode = text(f, "mode");
      if (mode != null && !mode.matches("0?[0-7]{3,4}")) {
        throw new SpecException(origin + ": file " + path + ": mode must be octal, not " + mode);
      }
      String content = text(f, "content");
      if (content == null) {
        content = text(f, "");
      }
      b.file(path, mode == null ? "0644" : mode, content == null ? "" : content);
    }
    int i = 0;
    for (JsonNode s : nodes(root, "scripts", "script")) {
      b.script(scriptName(s, "script-" + i++), scriptBody(s, origin));
    }
    i = 0;
    List<JsonNode> fb = new ArrayList<>();
    for (String field : List.of("firstBoot", "first-boot")) {
      JsonNode w = root.get(field);
      if (w != null && w.isObject() && w.has("script") && w.size() == 1) {
        addNodes(fb, w.get("script")); // XML: <firstBoot><script name="..">..</script></firstBoot>
      } else {
        addNodes(fb, w);
      }
    }
    for (JsonNode s : fb) {
      b.firstBoot(scriptName(s, "firstboot-" + i++), scriptBody(s, origin));
    }
    b.kernel(Boolean.parseBoolean(text(root, "kernel")));
    for (String s : strings(root, "services", "service")) {
      b.service(s);
    }
    return b.build();
  }

  private static String scriptName(JsonNode s, String dflt) {
    String n = s.isObject() ? text(s, "name") : null;
    return n == null ? dflt : n;
  }

  private static String scriptBody(JsonNode s, String origin) {
    if (s.isValueNode()) {
      return s.asText();
    }
    String c = text(s, "content");
    if (c == null) {
      c = text(s, "");
    }
    if (c == null) {
      throw new SpecException(origin + ": script without content");
    }
    return c;
  }

  private static List<String> sorted() {
    return FIELDS.stream().sorted().toList();
  }

  private static String require(JsonNode n, String field, String origin, String what) {
    String v = n.isObject() ? text(n, field) : null;
    if (v == null || v.isBlank()) {
      throw new SpecException(origin + ": " + what + " needs '" + field + "'");
    }
    return v;
  }

  static String text(JsonNode n, String field) {
    JsonNode v = n.get(field);
    if (v == null || v.isNull()) {
      return null;
    }
    if (v.isValueNode()) {
      return v.asText();
    }
    if (v.isObject() && v.has("")) {
      return v.get("").asText();
    }
    return null;
  }

  /** Nodes of a list field written as a wrapper (plural) or repeated element (singular). */
  private static List<JsonNode> nodes(JsonNode root, String plural, String singular) {
    List<JsonNode> out = new ArrayList<>();
    addNodes(out, root.get(singular));
    JsonNode w = root.get(plural);
    if (w != null) {
      if (w.isObject() && w.has(singular) && w.size() == 1) {
        addNodes(out, w.get(singular)); // XML wrapper: <scripts><script>..</script></scripts>
      } else {
        addNodes(out, w);
      }
    }
    return out;
  }

  private static void addNodes(List<JsonNode> out, JsonNode n) {
    if (n == null || n.isNull()) {
      return;
    }
    if (n.isArray()) {
      n.forEach(out::add);
    } else {
      out.add(n);
    }
  }

  /** A list of words; strings may hold several, separated by spaces or commas. */
  private static List<String> strings(JsonNode root, String plural, String singular) {
    List<String> out = new ArrayList<>();
    for (JsonNode n : nodes(root, plural, singular)) {
      out.addAll(words(n.isValueNode() ? n.asText() : text(n, "")));
    }
    return out;
  }

  /** A list of whole strings (SSH keys contain spaces). */
  private static List<String> stringsRaw(JsonNode root, String plural, String singular) {
    List<String> out = new ArrayList<>();
    for (JsonNode n : nodes(root, plural, singular)) {
      String s = n.isValueNode() ? n.asText() : text(n, "");
      if (s != null && !s.isBlank()) {
        out.add(s.strip());
      }
    }
    return out;
  }

  static List<String> words(String s) {
    List<String> out = new ArrayList<>();
    if (s == null) {
      return out;
    }
    for (String w : s.split("[\\s,]+")) {
      if (!w.isEmpty()) {
        out.add(w);
      }
    }
    return out;
  }
}
