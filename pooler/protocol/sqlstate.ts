// SQLSTATE codes of the refusals the pooler itself sends (PostgreSQL's errcodes.txt).
export const SqlState = {
  SuccessfulCompletion: "00000",
  ProtocolViolation: "08P01",
  ConnectionFailure: "08006",
  CannotConnectNow: "57P03",
  AdminShutdown: "57P01",
  QueryCanceled: "57014",
  InvalidPassword: "28P01",
  InvalidAuthorization: "28000",
  TooManyConnections: "53300",
  InvalidCatalogName: "3D000",
  FeatureNotSupported: "0A000",
  InvalidParameterValue: "22023",
  SyntaxError: "42601",
  UndefinedObject: "42704",
  InvalidSqlStatementName: "26000",
  DuplicatePreparedStatement: "42P05",
  ActiveSqlTransaction: "25001",
  IdleInTransactionTimeout: "25P03",
  /** PostgreSQL 17's transaction_timeout. */
  TransactionTimeout: "25P04",
  ObjectNotInPrerequisiteState: "55000",
  ConfigFileError: "F0000",
  InternalError: "XX000",
} as const;

export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
