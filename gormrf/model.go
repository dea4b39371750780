package gormrf

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"github.com/racefree/racefree"
)

// model is one call's view of a GORM model: its schema, the table, and a
// scratch row that the lookup and the attrs (or assignments) are written
// into, so that every value goes through GORM's own field setters and
// valuers, exactly as it would for GORM's Create.
type model struct {
	verb   string
	s      *schema.Schema
	table  string
	engine string // racefree dialect name
	now    func() time.Time

	scratch reflect.Value // addressable model value
	lookup  []string      // lookup columns, as given
	nulls   map[string]bool
	given   map[string]bool // columns set explicitly (attrs or assignments)
}

// newModel parses dest's model with db's naming strategy and cache.
func newModel(db *gorm.DB, verb string, dest any, engine string) (*model, error) {
	rv := reflect.ValueOf(dest)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return nil, inputError(verb, "dest must be a non-nil pointer to a model struct, got %T", dest)
	}
	stmt := &gorm.Statement{DB: db}
	if err := stmt.Parse(dest); err != nil {
		return nil, fmt.Errorf("gormrf: %s: parse model %T: %w", verb, dest, err)
	}
	table := stmt.Schema.Table
	if db.Statement != nil && db.Statement.Table != "" {
		table = db.Statement.Table // db.Table(name)
	}
	m := &model{
		verb:    verb + " " + table,
		s:       stmt.Schema,
		table:   table,
		engine:  engine,
		scratch: reflect.New(stmt.Schema.ModelType).Elem(),
		nulls:   map[string]bool{},
		given:   map[string]bool{},
	}
	m.now = db.NowFunc
	return m, nil
}

// inputError wraps racefree.ErrInvalidInput with a message naming the
// problem, as racefree's own input errors do.
func inputError(verb, format string, args ...any) error {
	return fmt.Errorf("gormrf: %s: %w: %s", verb, racefree.ErrInvalidInput, fmt.Sprintf(format, args...))
}

// apply writes src (a model value, a pointer to one, or a map keyed by
// column or field name) into the scratch row and returns the columns it
// set. From a struct only non-zero fields count, as in GORM's
// Where(struct); from a map every entry does.
func (m *model) apply(ctx context.Context, src any, what string) ([]string, error) {
	switch v := src.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return m.applyMap(ctx, v, what)
	case racefree.Values:
		return m.applyMap(ctx, v, what)
	}
	sv := reflect.ValueOf(src)
	if sv.Kind() == reflect.Pointer {
		if sv.IsNil() {
			return nil, nil
		}
		sv = sv.Elem()
	}
	if sv.Type() != m.s.ModelType {
		return nil, inputError(m.verb, "the %s is a %T; want a %v, a *%v or a map[string]any", what, src, m.s.ModelType, m.s.ModelType)
	}
	if !sv.CanAddr() {
		// GORM's field accessors allocate nil embedded pointers, which
		// needs an addressable value.
		c := reflect.New(sv.Type()).Elem()
		c.Set(sv)
		sv = c
	}
	var cols []string
	for _, f := range m.s.Fields {
		if f.DBName == "" {
			continue // an association or an ignored field
		}
		if _, zero := f.ValueOf(ctx, sv); zero {
			continue
		}
		f.ReflectValueOf(ctx, m.scratch).Set(f.ReflectValueOf(ctx, sv))
		cols = append(cols, f.DBName)
	}
	return cols, nil
}

func (m *model) applyMap(ctx context.Context, src map[string]any, what string) ([]string, error) {
	cols := make([]string, 0, len(src))
	for name, v := range src {
		f := m.s.LookUpField(name)
		if f == nil || f.DBName == "" {
			return nil, inputError(m.verb, "the %s names %q, which is neither a column nor a field of %v", what, name, m.s.ModelType)
		}
		if v == nil {
			m.nulls[f.DBName] = true
		}
		if err := f.Set(ctx, m.scratch, v); err != nil {
			return nil, inputError(m.verb, "the %s's value for %q: %v", what, name, err)
		}
		m.given[f.DBName] = true
		cols = append(cols, f.DBName)
	}
	slices.Sort(cols)
	return cols, nil
}

// setLookup applies the lookup and adds the soft-delete condition GORM's
// queries carry, unless db is Unscoped.
func (m *model) setLookup(ctx context.Context, db *gorm.DB, lookup any) error {
	cols, err := m.apply(ctx, lookup, "lookup")
	if err != nil {
		return err
	}
	if len(cols) == 0 {
		return inputError(m.verb, "empty lookup: at least one non-zero field or map entry must identify the row")
	}
	m.lookup = cols
	if db.Statement != nil && db.Statement.Unscoped {
		return nil
	}
	for _, f := range m.s.Fields {
		if f.DBName == "" || slices.Contains(m.lookup, f.DBName) {
			continue
		}
		switch {
		case f.FieldType == deletedAtType:
			m.lookup = append(m.lookup, f.DBName)
			m.nulls[f.DBName] = true
		case reflect.PointerTo(f.FieldType).Implements(queryClauser) || f.FieldType.Implements(queryClauser):
			return fmt.Errorf("gormrf: %s: field %s adds query conditions gormrf cannot translate (a soft-delete plugin?); use db.Unscoped() and put the condition in the lookup", m.verb, f.Name)
		}
	}
	return nil
}

var (
	deletedAtType = reflect.TypeFor[gorm.DeletedAt]()
	queryClauser  = reflect.TypeFor[schema.QueryClausesInterface]()
)

// lookupValues are the lookup columns' values from the scratch row.
func (m *model) lookupValues(ctx context.Context) racefree.Values {
	vals := make(racefree.Values, len(m.lookup))
	for _, col := range m.lookup {
		if m.nulls[col] {
			vals[col] = nil
			continue
		}
		v, _ := m.s.FieldsByDBName[col].ValueOf(ctx, m.scratch)
		vals[col] = m.bindable(v)
	}
	return vals
}

// createValues are the columns GORM's Create would write for the scratch
// row, less the lookup columns: every creatable column, except those with
// a database default left zero; zero autoCreateTime and autoUpdateTime
// fields set to now, and zero fields with a Go default (default:… on a
// field GORM can parse) set to it.
func (m *model) createValues(ctx context.Context) (racefree.Values, error) {
	vals := racefree.Values{}
	var now time.Time
	for _, col := range m.s.DBNames {
		f := m.s.FieldsByDBName[col]
		if !f.Creatable || slices.Contains(m.lookup, col) {
			continue
		}
		v, zero := f.ValueOf(ctx, m.scratch)
		if zero && !m.given[col] {
			switch {
			case f.HasDefaultValue && f.DefaultValueInterface == nil:
				continue // the database's default (auto-increment, default:…)
			case f.DefaultValueInterface != nil:
				if err := f.Set(ctx, m.scratch, f.DefaultValueInterface); err != nil {
					return nil, fmt.Errorf("gormrf: %s: default of %s: %w", m.verb, f.Name, err)
				}
				v, _ = f.ValueOf(ctx, m.scratch)
			case f.AutoCreateTime > 0 || f.AutoUpdateTime > 0:
				if now.IsZero() {
					now = m.now()
				}
				if err := f.Set(ctx, m.scratch, now); err != nil {
					return nil, fmt.Errorf("gormrf: %s: set %s: %w", m.verb, f.Name, err)
				}
				v, _ = f.ValueOf(ctx, m.scratch)
			}
		}
		if m.nulls[col] {
			v = nil
		}
		vals[col] = m.bindable(v)
	}
	return vals, nil
}

// updateValues are the columns UpdateOrCreate sets on an existing row: the
// assigned ones, and autoUpdateTime fields (UpdatedAt) not assigned, set to
// now as GORM's Updates does.
func (m *model) updateValues(ctx context.Context, assigned []string) (racefree.Values, error) {
	vals := racefree.Values{}
	for _, col := range assigned {
		f := m.s.FieldsByDBName[col]
		if !f.Updatable {
			return nil, inputError(m.verb, "field %s is not updatable (its gorm tag forbids it)", f.Name)
		}
		v, _ := f.ValueOf(ctx, m.scratch)
		if m.nulls[col] {
			v = nil
		}
		vals[col] = m.bindable(v)
	}
	var now time.Time
	for _, f := range m.s.Fields {
		if f.DBName == "" || f.AutoUpdateTime == 0 || !f.Updatable || slices.Contains(assigned, f.DBName) || slices.Contains(m.lookup, f.DBName) {
			continue
		}
		if now.IsZero() {
			now = m.now()
		}
		row := reflect.New(m.s.ModelType).Elem()
		if err := f.Set(ctx, row, now); err != nil {
			return nil, fmt.Errorf("gormrf: %s: set %s: %w", m.verb, f.Name, err)
		}
		v, _ := f.ValueOf(ctx, row)
		vals[f.DBName] = m.bindable(v)
	}
	return vals, nil
}

// bindable adapts a GORM field value to what racefree accepts for the
// column. SQLite has no boolean type (GORM declares bool columns
// "numeric"), so booleans are sent as the integers SQLite stores anyway.
func (m *model) bindable(v any) any {
	if b, ok := v.(bool); ok && m.engine == "sqlite" {
		if b {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// fill writes a row read by racefree into dest, through GORM's setters,
// after zeroing it. Columns the model does not map are ignored.
func (m *model) fill(ctx context.Context, dest any, row racefree.Values) error {
	rv := reflect.ValueOf(dest).Elem()
	rv.Set(reflect.Zero(rv.Type()))
	for col, v := range row {
		f := m.s.FieldsByDBName[col]
		if f == nil || !f.Readable {
			continue
		}
		if err := f.Set(ctx, rv, v); err != nil {
			return fmt.Errorf("gormrf: %s: read column %q into %s: %w", m.verb, col, f.Name, err)
		}
	}
	return nil
}
