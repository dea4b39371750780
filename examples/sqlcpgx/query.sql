-- name: CreateAccount :exec
INSERT INTO accounts (id, owner, balance) VALUES ($1, $2, $3);

-- name: GetAccount :one
SELECT id, owner, balance FROM accounts
WHERE id = $1;

-- name: AddToBalance :exec
UPDATE accounts SET balance = balance + sqlc.arg(amount) WHERE id = sqlc.arg(id);

-- name: SetBalance :execrows
UPDATE accounts SET balance = $1 WHERE id = $2;

-- name: ListAccounts :many
SELECT id, owner, balance FROM accounts
ORDER BY id;

-- name: TotalBalance :one
SELECT CAST(COALESCE(SUM(balance), 0) AS BIGINT) AS total FROM accounts;
