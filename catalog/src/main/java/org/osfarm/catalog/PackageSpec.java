package org.osfarm.catalog;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A package condition: a name, optionally with a version relation ({@code openssh-server}, {@code
 * openssh-server=1:9.2p1-2+deb12u3}, {@code openssl<3.0.15}; also {@code <=}, {@code >}, {@code
 * >=}). Versions compare as dpkg compares them.
 */
public record PackageSpec(String name, String relation, String version) {
  private static final Pattern FORM =
      Pattern.compile("([a-z0-9][a-z0-9+.\\-]*)(?::([a-z0-9\\-]+))?(?:(<=|>=|=|<|>)(\\S+))?");

  /** Parses {@code NAME[RELATION VERSION]}. */
  public static PackageSpec parse(String s) {
    Matcher m = FORM.matcher(s.trim());
    if (!m.matches()) {
      throw new IllegalArgumentException(
          "bad package '"
              + s
              + "': expected NAME, NAME=VERSION, NAME<VERSION, NAME<=VERSION, NAME>VERSION or"
              + " NAME>=VERSION (names are lower case)");
    }
    return new PackageSpec(m.group(1), m.group(3), m.group(4));
  }

  /** True if {@code p} is this package at an accepted version. */
  public boolean matches(PackageInfo p) {
    if (!p.name().equals(name)) {
      return false;
    }
    if (relation == null) {
      return true;
    }
    int c = DebianVersion.compare(p.version(), version);
    return switch (relation) {
      case "=" -> c == 0;
      case "<" -> c < 0;
      case "<=" -> c <= 0;
      case ">" -> c > 0;
      case ">=" -> c >= 0;
      default -> throw new IllegalStateException(relation);
    };
  }

  @Override
  public String toString() {
    return relation == null ? name : name + relation + version;
  }
}
