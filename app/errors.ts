// HTTP errors thrown by handlers; Express 5 passes them (and rejected promises) to the error handler,
// which renders the page for the status.
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message = "",
  ) {
    super(message);
  }
}

export const notFound = (message = ""): HttpError => new HttpError(404, message);
export const forbidden = (message = ""): HttpError => new HttpError(403, message);
export const badRequest = (message = ""): HttpError => new HttpError(400, message);

/**
 * An admin URL naming an object that does not exist: Django answers it with a redirect to the admin
 * index and a warning, not an error page (ModelAdmin._get_obj_does_not_exist_redirect).
 */
export class MissingObject extends HttpError {
  constructor(message: string) {
    super(404, message);
  }
}
