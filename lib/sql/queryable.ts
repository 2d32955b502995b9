// What a typed SQL call runs on: a pg Client or Pool, or graphile-worker's
// job helpers. Values pg returns for bigint and numeric columns are strings.
export interface Queryable {
  query(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

export type Numeric = number | string | null;

// An init's table as every table list carries it; label is the name as
// PostgreSQL quotes it (format('%I.%I'), quote_ident's rule).
export interface TableName {
  schema_name: string;
  table_name: string;
}

export const sameTable = (a: TableName, b: TableName): boolean => a.schema_name === b.schema_name && a.table_name === b.table_name;

export interface LabelledTable extends TableName {
  label: string;
}
