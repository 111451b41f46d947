package org.osfarm.catalog;

import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.osfarm.core.Digest;

/**
 * What {@link Catalog#find} looks for. Keys ({@code paths}, {@code digests}, {@code names}) are
 * lookups: a snapshot matches a kind of key if it holds <em>any</em> of the given values, so many
 * keys are answered in one query. Conditions ({@code packages}, {@code labels}, {@code words}) must
 * <em>all</em> hold. Different kinds intersect.
 *
 * @param paths exact paths from the image root ({@code usr/sbin/sshd}; a leading '/' is ignored)
 * @param digests SHA-256 of file contents
 * @param names glob patterns ({@code *}, {@code ?}, {@code [..]}) matched against entry names
 * @param packages installed packages, optionally with a version relation
 * @param labels label key to value (a glob; {@code *} for any value)
 * @param words words that must occur in a text file under {@code etc/}
 * @param latest only snapshots that a ref currently names
 */
public record FindQuery(
    List<String> paths,
    List<Digest> digests,
    List<String> names,
    List<PackageSpec> packages,
    Map<String, String> labels,
    List<String> words,
    boolean latest) {
  public FindQuery {
    paths = List.copyOf(paths);
    digests = List.copyOf(digests);
    names = List.copyOf(names);
    packages = List.copyOf(packages);
    labels = java.util.Collections.unmodifiableMap(new TreeMap<>(labels));
    words = List.copyOf(words);
    if (paths.isEmpty()
        && digests.isEmpty()
        && names.isEmpty()
        && packages.isEmpty()
        && labels.isEmpty()
        && words.isEmpty()) {
      throw new IllegalArgumentException(
          "nothing to find: give a path, digest, name, package, label or text");
    }
    for (String w : words) {
      if (w.isBlank() || w.indexOf('"') >= 0) {
        throw new IllegalArgumentException("bad text '" + w + "': give a word without quotes");
      }
    }
  }

  /** An empty query to fill in with the {@code with...} methods. */
  public static Builder builder() {
    return new Builder();
  }

  /** Collects the parts of a query. */
  public static final class Builder {
    private final java.util.ArrayList<String> paths = new java.util.ArrayList<>();
    private final java.util.ArrayList<Digest> digests = new java.util.ArrayList<>();
    private final java.util.ArrayList<String> names = new java.util.ArrayList<>();
    private final java.util.ArrayList<PackageSpec> packages = new java.util.ArrayList<>();
    private final TreeMap<String, String> labels = new TreeMap<>();
    private final java.util.ArrayList<String> words = new java.util.ArrayList<>();
    private boolean latest;

    public Builder path(String p) {
      paths.add(p);
      return this;
    }

    public Builder digest(Digest d) {
      digests.add(d);
      return this;
    }

    public Builder name(String glob) {
      names.add(glob);
      return this;
    }

    public Builder pkg(PackageSpec p) {
      packages.add(p);
      return this;
    }

    public Builder label(String key, String valueGlob) {
      labels.put(key, valueGlob);
      return this;
    }

    public Builder word(String w) {
      words.add(w);
      return this;
    }

    public Builder latest(boolean l) {
      latest = l;
      return this;
    }

    public FindQuery build() {
      return new FindQuery(paths, digests, names, packages, labels, words, latest);
    }
  }
}
