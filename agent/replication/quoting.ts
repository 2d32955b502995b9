// Identifiers and literals for SQL text that cannot take parameters (DDL):
// always quoted. Names shown to people use lib/sql's label (quote_ident).
import { escapeIdentifier, escapeLiteral } from 'pg';
import { TableName } from '../../lib/sql/queryable';

export const ident = escapeIdentifier;
export const literal = escapeLiteral;

export function qualified(table: TableName): string {
  return `${ident(table.schema_name)}.${ident(table.table_name)}`;
}
