// Identifiers and literals for SQL text that cannot take parameters (DDL).
import { escapeIdentifier, escapeLiteral } from 'pg';

export const ident = escapeIdentifier;
export const literal = escapeLiteral;

export function qualified(table: { schema_name: string; table_name: string }): string {
  return `${ident(table.schema_name)}.${ident(table.table_name)}`;
}
