package org.osfarm.server;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import org.osfarm.build.BuildListener;
import org.osfarm.build.BuildResult;
import org.osfarm.build.DistroClass;
import org.osfarm.build.ImageBuilder;
import org.osfarm.build.ImageSpec;
import org.osfarm.build.OutputFormat;
import org.osfarm.build.OutputRequest;
import org.osfarm.build.SpecException;

/** {@link ImageService} over the build module's {@link ImageBuilder}. */
public final class BuilderImageService implements ImageService {
  private final ImageBuilder builder;

  public BuilderImageService(ImageBuilder builder) {
    this.builder = builder;
  }

  @Override
  public Collection<DistroClass> classes() {
    return builder.classes().all();
  }

  @Override
  public void check(ImageSpec spec, OutputFormat format) {
    DistroClass c = builder.classes().get(spec.className());
    if (spec.arch() != null && !c.architectures().contains(spec.arch())) {
      throw new SpecException(
          "class "
              + c.name()
              + " has no architecture '"
              + spec.arch()
              + "'; choose one of: "
              + String.join(", ", c.architectures()));
    }
    for (String g : spec.groups()) {
      c.group(g); // throws for an unknown group
    }
  }

  @Override
  public Outcome build(
      ImageSpec spec, String ref, Path output, OutputFormat format, BuildListener l)
      throws IOException {
    BuildResult r = builder.build(spec, ref, List.of(new OutputRequest(output, format)), l);
    return new Outcome(r.snapshot(), r.layersBuilt(), r.layersReused(), r.outputsFromCache() > 0);
  }
}
