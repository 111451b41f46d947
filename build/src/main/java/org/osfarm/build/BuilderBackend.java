package org.osfarm.build;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;

/**
 * A way to build one layer: mmdebstrap for Debian and Ubuntu; an RPM backend (dnf {@code
 * --installroot} in the same user namespace) would implement this for RPM classes. A backend
 * streams the layer's whole root tree as a tar and confines everything it runs in a user namespace.
 */
public interface BuilderBackend {
  /** Whether this backend builds the class's family. */
  boolean supports(DistroClass distro);

  /** Starts building a layer; read {@link Running#tar()} to its end, then call finish. */
  Running start(Job job, BuildListener listener) throws IOException;

  /**
   * One layer to build.
   *
   * @param distro the class
   * @param arch the architecture
   * @param kind which layer
   * @param parentTar the parent layer's tree as a tar, or null for the core layer
   * @param packages packages to install on top of the parent (or the variant, for core)
   * @param repositories extra repositories to add before installing
   * @param script shell script run chrooted after the packages (may be empty)
   * @param work a private directory writable by the namespace's root
   * @param debs the shared cache of downloaded .deb files for this class and architecture
   * @param keyring the archive keyring
   * @param then further layers built in the same run on top of this one; before each, the tree so
   *     far is streamed as a tar to {@link #snapshotPipe(int)} (a FIFO the caller made and reads)
   *     with its installed packages in {@link #packagesFile(int)}, while the build goes on
   * @param lower instead of {@code parentTar}: a checkout of the parent layer (see {@link
   *     LayerCheckouts}); the layer is built in an overlayfs over it and only the changes are kept,
   *     in {@link #upper()}, with no tar written
   */
  record Job(
      DistroClass distro,
      String arch,
      LayerKind kind,
      Path parentTar,
      List<String> packages,
      List<ImageSpec.Repo> repositories,
      String script,
      Path work,
      Path debs,
      Path keyring,
      List<Stage> then,
      Path lower) {
    Job(
        DistroClass distro,
        String arch,
        LayerKind kind,
        Path parentTar,
        List<String> packages,
        List<ImageSpec.Repo> repositories,
        String script,
        Path work,
        Path debs,
        Path keyring,
        List<Stage> then) {
      this(
          distro,
          arch,
          kind,
          parentTar,
          packages,
          repositories,
          script,
          work,
          debs,
          keyring,
          then,
          null);
    }

    Job(
        DistroClass distro,
        String arch,
        LayerKind kind,
        Path parentTar,
        List<String> packages,
        List<ImageSpec.Repo> repositories,
        String script,
        Path work,
        Path debs,
        Path keyring) {
      this(
          distro,
          arch,
          kind,
          parentTar,
          packages,
          repositories,
          script,
          work,
          debs,
          keyring,
          List.of(),
          null);
    }

    /** The overlay's upper directory: the layer's changes to {@link #lower()}. */
    Path upper() {
      return work.resolve("upper");
    }

    /** Where the tree of the {@code i}th layer of the run (0 = this job's) is streamed. */
    Path snapshotPipe(int i) {
      return work.resolve("layer-" + i + ".tar");
    }

    /** The installed packages of the {@code i}th layer of the run; the last one's is final. */
    Path packagesFile(int i) {
      return i == then.size()
          ? work.resolve("packages.txt")
          : work.resolve("packages-" + i + ".txt");
    }
  }

  /** A further layer built in the same run as a {@link Job}. */
  record Stage(
      LayerKind kind, List<String> packages, List<ImageSpec.Repo> repositories, String script) {}

  /** A running layer build. */
  interface Running {
    /** The layer's root tree as a tar stream. */
    InputStream tar();

    /** Waits for the end; returns the installed packages ("name version" lines) or throws. */
    List<String> finish();

    /** Stops the build (after a failure on the reading side). */
    void abort();

    /**
     * The backend's process, which may still be cleaning up after {@link #finish()} returned (its
     * work directory must not be deleted under it), or null.
     */
    default ProcessHandle process() {
      return null;
    }
  }
}
