package org.osfarm.build;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.TreeSet;

/**
 * What image to build: the model behind OS Farm's XML image description, and its YAML and JSON
 * forms ({@link SpecParser}). Immutable; {@link #normalized()} gives the canonical form the cache
 * keys are computed from (sorted, de-duplicated lists; defaults filled from the class).
 *
 * @param name the image's name (not part of any cache key)
 * @param className the distro class, e.g. {@code debian-bookworm} ({@code osfarm classes})
 * @param arch Debian architecture, e.g. {@code amd64} or {@code i386}; null means the class default
 * @param groups package groups of the class; {@code core} and {@code base} are layers, other groups
 *     add their packages to the image layer; empty means the class's default groups
 * @param packages extra packages for the image layer
 * @param repositories extra apt repositories for the image layer
 * @param rootPassword root's password, or null to leave root locked
 * @param users accounts to create
 * @param hostname the image's host name, or null for the class default
 * @param files files to add to the image
 * @param scripts shell scripts run in the image (chrooted, as root in the build's user namespace)
 * @param kernel whether to install the class's kernel (needed to boot the image)
 * @param services appliance layer: systemd units to enable
 * @param firstBoot appliance layer: scripts run once on an instance's first boot
 * @param rootPasswordHash root's password as a crypt(3) hash ({@code $6$salt$...}, set with {@code
 *     chpasswd -e}), or null; exclusive with {@code rootPassword}
 */
public record ImageSpec(
    String name,
    String className,
    String arch,
    List<String> groups,
    List<String> packages,
    List<Repo> repositories,
    String rootPassword,
    List<User> users,
    String hostname,
    List<FileSpec> files,
    List<Script> scripts,
    boolean kernel,
    List<String> services,
    List<Script> firstBoot,
    String rootPasswordHash) {

  public ImageSpec {
    if (rootPasswordHash != null) {
      if (rootPassword != null) {
        throw new SpecException("give rootPassword or rootPasswordHash, not both");
      }
      checkCryptHash(rootPasswordHash, "rootPasswordHash");
    }
    groups = List.copyOf(groups == null ? List.of() : groups);
    packages = List.copyOf(packages == null ? List.of() : packages);
    repositories = List.copyOf(repositories == null ? List.of() : repositories);
    users = List.copyOf(users == null ? List.of() : users);
    files = List.copyOf(files == null ? List.of() : files);
    scripts = List.copyOf(scripts == null ? List.of() : scripts);
    services = List.copyOf(services == null ? List.of() : services);
    firstBoot = List.copyOf(firstBoot == null ? List.of() : firstBoot);
  }

  /** An extra apt repository: {@code deb [signed-by=key] uri suite components}. */
  public record Repo(String uri, String suite, List<String> components, String key) {
    public Repo {
      components = List.copyOf(components == null ? List.of("main") : components);
    }
  }

  /**
   * An account; {@code sshKeys} go to its {@code ~/.ssh/authorized_keys}. Its password is given in
   * clear ({@code password}) or as a crypt(3) hash ({@code passwordHash}, set with {@code chpasswd
   * -e}), not both; neither leaves the account without a password.
   */
  public record User(
      String name, String password, String passwordHash, List<String> sshKeys, boolean sudo) {
    public User {
      sshKeys = List.copyOf(sshKeys == null ? List.of() : sshKeys);
      if (passwordHash != null) {
        if (password != null) {
          throw new SpecException("user " + name + ": give password or passwordHash, not both");
        }
        checkCryptHash(passwordHash, "user " + name + ": passwordHash");
      }
    }

    /** An account with its password in clear (or none). */
    public User(String name, String password, List<String> sshKeys, boolean sudo) {
      this(name, password, null, sshKeys, sudo);
    }
  }

  /** A file to add: absolute path in the image, octal mode, text content. */
  public record FileSpec(String path, String mode, String content) {}

  /** A named shell script. */
  public record Script(String name, String content) {}

  private static void checkCryptHash(String hash, String what) {
    if (!hash.matches("\\$[0-9a-z]+\\$[./A-Za-z0-9$=,]+")) {
      throw new SpecException(
          what + " must be a crypt(3) hash such as the output of 'openssl passwd -6'");
    }
  }

  /** A builder for specs made in code or from command-line flags. */
  public static Builder builder() {
    return new Builder();
  }

  /** The canonical form: sorted, de-duplicated groups, packages and services. */
  public ImageSpec normalized() {
    return new ImageSpec(
        name,
        className,
        arch,
        sortedUnique(groups),
        sortedUnique(packages),
        repositories,
        rootPassword,
        users,
        hostname,
        files,
        scripts,
        kernel,
        sortedUnique(services),
        firstBoot,
        rootPasswordHash);
  }

  static List<String> sortedUnique(List<String> in) {
    TreeSet<String> s = new TreeSet<>();
    for (String x : in) {
      if (x != null && !x.isBlank()) {
        s.add(x.trim());
      }
    }
    return List.copyOf(s);
  }

  /** Mutable builder; {@link #build()} makes the immutable spec. */
  public static final class Builder {
    private String name;
    private String className;
    private String arch;
    private final List<String> groups = new ArrayList<>();
    private final List<String> packages = new ArrayList<>();
    private final List<Repo> repositories = new ArrayList<>();
    private String rootPassword;
    private final List<User> users = new ArrayList<>();
    private String hostname;
    private final List<FileSpec> files = new ArrayList<>();
    private final List<Script> scripts = new ArrayList<>();
    private boolean kernel;
    private final List<String> services = new ArrayList<>();
    private final List<Script> firstBoot = new ArrayList<>();
    private String rootPasswordHash;

    public Builder name(String v) {
      name = v;
      return this;
    }

    public Builder className(String v) {
      className = v;
      return this;
    }

    public Builder arch(String v) {
      arch = v;
      return this;
    }

    public Builder group(String v) {
      groups.add(Objects.requireNonNull(v));
      return this;
    }

    public Builder packages(String... v) {
      packages.addAll(List.of(v));
      return this;
    }

    public Builder packagesList(List<String> v) {
      packages.addAll(v);
      return this;
    }

    public Builder groupsList(List<String> v) {
      groups.addAll(v);
      return this;
    }

    public Builder repository(Repo r) {
      repositories.add(r);
      return this;
    }

    public Builder rootPassword(String v) {
      rootPassword = v;
      return this;
    }

    public Builder rootPasswordHash(String v) {
      rootPasswordHash = v;
      return this;
    }

    public Builder user(User u) {
      users.add(u);
      return this;
    }

    public Builder hostname(String v) {
      hostname = v;
      return this;
    }

    public Builder file(String path, String mode, String content) {
      files.add(new FileSpec(path, mode, content));
      return this;
    }

    public Builder script(String n, String content) {
      scripts.add(new Script(n, content));
      return this;
    }

    public Builder kernel(boolean v) {
      kernel = v;
      return this;
    }

    public Builder service(String v) {
      services.add(v);
      return this;
    }

    public Builder firstBoot(String n, String content) {
      firstBoot.add(new Script(n, content));
      return this;
    }

    public ImageSpec build() {
      return new ImageSpec(
          name,
          className,
          arch,
          groups,
          packages,
          repositories,
          rootPassword,
          users,
          hostname,
          files,
          scripts,
          kernel,
          services,
          firstBoot,
          rootPasswordHash);
    }
  }
}
