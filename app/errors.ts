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
