package org.osfarm.catalog;

import org.osfarm.core.RepositoryException;

/** The catalog cannot do what was asked; the message says why and what to do. */
public class CatalogException extends RepositoryException {
  public CatalogException(String message) {
    super(message);
  }

  public CatalogException(String message, Throwable cause) {
    super(message, cause);
  }
}
